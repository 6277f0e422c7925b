//! X.509 certificate objects: the attributes the token reads from the certificate itself
//! (CKA_VALUE, DER) when the template leaves them out.

use super::Object;
use crate::crypto::{Digest, Hash};
use crate::error::{Error, Result};
use cryptoki_sys::*;
use der::{Decode, Encode};
use x509_cert::Certificate;

/// Parses CKA_VALUE as a DER X.509 certificate and fills CKA_SUBJECT, CKA_ISSUER,
/// CKA_SERIAL_NUMBER and CKA_PUBLIC_KEY_INFO (DER encodings, as the specification
/// defines them) where the template gave none or an empty one, and CKA_CHECK_VALUE (the
/// first three bytes of the SHA-1 of the value). A value that is not one certificate,
/// with nothing after it, is CKR_ATTRIBUTE_VALUE_INVALID.
pub fn fill_x509(obj: &mut Object) -> Result<()> {
    let value = obj.get_raw(CKA_VALUE).ok_or(Error::TemplateIncomplete)?.to_vec();
    let cert = Certificate::from_der(&value).map_err(|_| Error::AttributeValueInvalid)?;
    let tbs = &cert.tbs_certificate;
    let der = |r: der::Result<Vec<u8>>| r.map_err(|_| Error::AttributeValueInvalid);
    let derived = [
        (CKA_SUBJECT, der(tbs.subject.to_der())?),
        (CKA_ISSUER, der(tbs.issuer.to_der())?),
        (CKA_SERIAL_NUMBER, der(tbs.serial_number.to_der())?),
        (CKA_PUBLIC_KEY_INFO, der(tbs.subject_public_key_info.to_der())?),
    ];
    for (ty, v) in derived {
        if obj.get_raw(ty).is_none_or(<[u8]>::is_empty) {
            obj.set(ty, v);
        }
    }
    let mut sha1 = Digest::new(Hash::Sha1);
    sha1.update(&value);
    obj.set(CKA_CHECK_VALUE, sha1.finish()[..3].to_vec());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::{ck_ulong, Origin};

    /// A self-signed P-256 certificate (CN=kmstoken test, serial 0x1234).
    fn test_cert() -> Vec<u8> {
        hex::decode(CERT_HEX).unwrap()
    }

    const CERT_HEX: &str = concat!(
        "3082017330820119a00302010202021234300a06082a8648ce3d04030230183116301406035504030c0d6b6d73746f6b",
        "656e2074657374301e170d3236313132343031313335335a170d3336313132313031313335335a301831163014060355",
        "04030c0d6b6d73746f6b656e20746573743059301306072a8648ce3d020106082a8648ce3d030107034200047bc40222",
        "730c229116a9214f886060f5b55bc82174bd9e932247d2b658500164a6e0c42b9cf83c53487f3513d2f9500398e51aec",
        "9671aa99b2267a9ee5e28562a3533051301d0603551d0e04160414fa2847b933c74951d33d11675726356d219b433430",
        "1f0603551d23041830168014fa2847b933c74951d33d11675726356d219b4334300f0603551d130101ff040530030101",
        "ff300a06082a8648ce3d0403020348003045022100cb1b3f5313ea2322d8cf8d4f5c1c774976c9c902624d4d2b5c2a1c",
        "9b3d75471402204ad64b9863872cb63280e288de6ce09d1ad2ca6324f8945dec3d0b882ccf34af",
    );

    fn template(value: Vec<u8>) -> Vec<(CK_ATTRIBUTE_TYPE, Vec<u8>)> {
        vec![(CKA_CLASS, ck_ulong(CKO_CERTIFICATE)), (CKA_CERTIFICATE_TYPE, ck_ulong(CKC_X_509)), (CKA_VALUE, value)]
    }

    #[test]
    fn subject_issuer_and_serial_come_from_the_certificate() {
        let cert = test_cert();
        let parsed = Certificate::from_der(&cert).unwrap();
        let o = Object::build(&template(cert.clone()), Origin::Create, &[], false).unwrap();
        assert_eq!(o.get_raw(CKA_SUBJECT).unwrap(), parsed.tbs_certificate.subject.to_der().unwrap());
        assert_eq!(o.get_raw(CKA_ISSUER).unwrap(), o.get_raw(CKA_SUBJECT).unwrap());
        assert_eq!(o.get_raw(CKA_SERIAL_NUMBER).unwrap(), [0x02, 0x02, 0x12, 0x34]);
        assert!(!o.is_private(), "certificates are public by default");
        assert_eq!(o.get_raw(CKA_CHECK_VALUE).unwrap().len(), 3);
        // The caller's values stay.
        let mut t = template(cert);
        t.push((CKA_SUBJECT, b"mine".to_vec()));
        let o = Object::build(&t, Origin::Create, &[], false).unwrap();
        assert_eq!(o.get_raw(CKA_SUBJECT).unwrap(), b"mine");
    }

    #[test]
    fn a_value_that_is_no_certificate_is_refused() {
        let mut cert = test_cert();
        for bad in [b"not a certificate".to_vec(), cert[..cert.len() - 1].to_vec(), [cert.clone(), vec![0]].concat()] {
            let e = Object::build(&template(bad), Origin::Create, &[], false).unwrap_err();
            assert_eq!(e, Error::AttributeValueInvalid);
        }
        cert[0] = 0x31;
        assert_eq!(
            Object::build(&template(cert), Origin::Create, &[], false).unwrap_err(),
            Error::AttributeValueInvalid
        );
    }
}
