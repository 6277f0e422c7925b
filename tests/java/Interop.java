// Java 17's SunPKCS11 provider against kmstoken, with the JDK's software providers
// (SunJCE, SunEC, SunRsaSign) as the oracle: every signature, ciphertext and shared
// secret that the token makes is checked by them, and the token checks theirs.
//
// Usage: java Interop <sign config> <crypt config> <user PIN>
//
// The two configurations name the same module and slot (tests/interop_java.rs writes
// them). A kmstoken token key has one KMS usage, taken from the template that makes it,
// and SunPKCS11 adds one set of `attributes` per key type to every key it generates, so
// one provider instance cannot make both a signing EC key and a key-agreement EC key:
// "sign" makes token keys that sign (EC, RSA) and AES keys; "crypt" makes EC keys that
// derive and RSA keys that decrypt.
//
// Prints one "OK ..." line per check, "entry <alias> <kind>" for the KeyStore listing,
// and "ALL OK" at the end; any failure is an exception and a non-zero exit status.

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.Provider;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.MGF1ParameterSpec;
import java.security.spec.PSSParameterSpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyAgreement;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

public final class Interop {
    private static final SecureRandom RANDOM = new SecureRandom();

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            throw new IllegalArgumentException("usage: Interop <sign config> <crypt config> <user PIN>");
        }
        Provider base = Security.getProvider("SunPKCS11");
        check(base != null, "the SunPKCS11 provider is present");
        Provider sign = base.configure(args[0]);
        Provider crypt = base.configure(args[1]);
        char[] pin = args[2].toCharArray();

        // Loading a PKCS11 KeyStore logs the user in (one login per token and process).
        KeyStore ks = KeyStore.getInstance("PKCS11", sign);
        ks.load(null, pin);
        System.out.println("OK login " + sign.getName());
        KeyStore cks = KeyStore.getInstance("PKCS11", crypt);
        cks.load(null, pin);
        System.out.println("OK login " + crypt.getName());
        List<String> before = list(ks, "before");

        aesGenerated(sign);
        aesKnownKey(sign, ks);
        ecdsa(sign, "secp256r1", "SHA256withECDSA");
        ecdsa(sign, "secp384r1", "SHA384withECDSA");
        rsaPkcs1(sign);
        rsaPss(sign);
        ecdh(crypt, "secp256r1");
        ecdh(crypt, "secp384r1");
        rsaDecrypt(crypt);

        // The imported AES key is a token object with its alias as the label: a second
        // KeyStore (a new listing of the token) sees it.
        KeyStore again = KeyStore.getInstance("PKCS11", sign);
        again.load(null, pin);
        List<String> after = list(again, "after");
        check(after.contains("java-aes"), "the imported AES key is listed: " + after);
        check(after.size() > before.size(), "the listing grew: " + before + " -> " + after);
        System.out.println("ALL OK");
    }

    /** Prints the KeyStore's entries and returns their aliases. */
    private static List<String> list(KeyStore ks, String when) throws GeneralSecurityException {
        List<String> aliases = Collections.list(ks.aliases());
        Collections.sort(aliases);
        for (String a : aliases) {
            String kind = ks.isKeyEntry(a)
                    ? (ks.getCertificate(a) != null ? "PrivateKeyEntry" : "SecretKeyEntry")
                    : "TrustedCertificateEntry";
            System.out.println("entry " + when + " " + a + " " + kind);
        }
        return aliases;
    }

    /** An AES-256 key generated on the token: GCM round trip there, and a tag check. */
    private static void aesGenerated(Provider p) throws Exception {
        KeyGenerator kg = KeyGenerator.getInstance("AES", p);
        kg.init(256);
        SecretKey key = kg.generateKey();
        check(key.toString().contains("token object"), "the generated AES key is a token object: " + key);
        byte[] iv = random(12);
        byte[] aad = "header".getBytes(StandardCharsets.UTF_8);
        byte[] plain = random(100);
        byte[] ct = gcm(Cipher.ENCRYPT_MODE, key, p, iv, aad, plain);
        check(ct.length == plain.length + 16, "GCM ciphertext carries a 16-byte tag");
        check(Arrays.equals(gcm(Cipher.DECRYPT_MODE, key, p, iv, aad, ct), plain), "GCM round trip on the token");
        byte[] bad = ct.clone();
        bad[3] ^= 1;
        try {
            gcm(Cipher.DECRYPT_MODE, key, p, iv, aad, bad);
            throw new AssertionError("a forged GCM ciphertext was decrypted");
        } catch (AEADBadTagException expected) {
            // The tag check failed, as it must.
        }
        System.out.println("OK aes-gcm generated token key");
    }

    /**
     * An AES-256 key of known value, stored on the token through the KeyStore: the token's
     * GCM ciphertext equals SunJCE's for the same IV, and each decrypts the other's.
     */
    private static void aesKnownKey(Provider p, KeyStore ks) throws Exception {
        SecretKeySpec soft = new SecretKeySpec(random(32), "AES");
        ks.setEntry("java-aes", new KeyStore.SecretKeyEntry(soft), null);
        Key key = ks.getKey("java-aes", null);
        check(key != null && key.toString().contains("token object"), "the imported AES key is a token object: " + key);
        for (int len : new int[] {0, 1, 16, 33, 1000}) {
            byte[] iv = random(12);
            byte[] aad = random(len % 7 + 1);
            byte[] plain = random(len);
            byte[] ours = gcm(Cipher.ENCRYPT_MODE, key, p, iv, aad, plain);
            byte[] theirs = gcm(Cipher.ENCRYPT_MODE, soft, Security.getProvider("SunJCE"), iv, aad, plain);
            check(Arrays.equals(ours, theirs), "AES-GCM of " + len + " bytes equals SunJCE's");
            byte[] back = gcm(Cipher.DECRYPT_MODE, soft, Security.getProvider("SunJCE"), iv, aad, ours);
            check(Arrays.equals(back, plain), "SunJCE decrypts the token's GCM ciphertext");
            check(Arrays.equals(gcm(Cipher.DECRYPT_MODE, key, p, iv, aad, theirs), plain),
                    "the token decrypts SunJCE's GCM ciphertext");
        }
        System.out.println("OK aes-gcm known key matches SunJCE");
    }

    private static byte[] gcm(int mode, Key key, Provider p, byte[] iv, byte[] aad, byte[] in) throws Exception {
        Cipher c = Cipher.getInstance("AES/GCM/NoPadding", p);
        c.init(mode, key, new GCMParameterSpec(128, iv));
        c.updateAAD(aad);
        return c.doFinal(in);
    }

    /** ECDSA by a token key, verified by SunEC with the public key taken out of the token. */
    private static void ecdsa(Provider p, String curve, String alg) throws Exception {
        KeyPairGenerator kpg = KeyPairGenerator.getInstance("EC", p);
        kpg.initialize(new ECGenParameterSpec(curve));
        KeyPair kp = kpg.generateKeyPair();
        check(kp.getPrivate().toString().contains("token object"), "the EC private key is a token object");
        PublicKey soft = software(kp.getPublic(), "EC");
        for (int len : new int[] {0, 55, 3000}) {
            byte[] msg = random(len);
            byte[] sig = sign(alg, p, kp.getPrivate(), msg);
            check(verify(alg, "SunEC", soft, msg, sig), alg + " of " + len + " bytes verifies in SunEC");
            msg = Arrays.copyOf(msg, len + 1);
            check(!verify(alg, "SunEC", soft, msg, sig), alg + " does not verify another message");
        }
        // And the token verifies SunEC's signature (SunPKCS11 makes the public key a
        // session object).
        KeyPairGenerator skpg = KeyPairGenerator.getInstance("EC", "SunEC");
        skpg.initialize(new ECGenParameterSpec(curve));
        KeyPair peer = skpg.generateKeyPair();
        byte[] msg = random(64);
        byte[] sig = sign(alg, Security.getProvider("SunEC"), peer.getPrivate(), msg);
        Signature v = Signature.getInstance(alg, p);
        v.initVerify(peer.getPublic());
        v.update(msg);
        check(v.verify(sig), "the token verifies SunEC's " + alg);
        System.out.println("OK " + alg + " " + curve);
    }

    private static byte[] sign(String alg, Provider p, PrivateKey k, byte[] msg) throws Exception {
        Signature s = Signature.getInstance(alg, p);
        s.initSign(k);
        s.update(msg);
        return s.sign();
    }

    private static boolean verify(String alg, String provider, PublicKey k, byte[] msg, byte[] sig) throws Exception {
        Signature s = Signature.getInstance(alg, provider);
        s.initVerify(k);
        s.update(msg);
        return s.verify(sig);
    }

    /** The same public key (its X.509 encoding, read from the token) as a key of SunEC or SunRsaSign. */
    private static PublicKey software(PublicKey token, String alg) throws Exception {
        KeyFactory kf = KeyFactory.getInstance(alg, alg.equals("EC") ? "SunEC" : "SunRsaSign");
        PublicKey soft = kf.generatePublic(new X509EncodedKeySpec(token.getEncoded()));
        check(!(soft.getClass().getName().contains("pkcs11")), "a software key");
        return soft;
    }

    private static KeyPair rsaPair(Provider p) throws Exception {
        KeyPairGenerator kpg = KeyPairGenerator.getInstance("RSA", p);
        kpg.initialize(2048);
        KeyPair kp = kpg.generateKeyPair();
        check(kp.getPrivate().toString().contains("token object"), "the RSA private key is a token object");
        return kp;
    }

    /** SHA256withRSA (PKCS#1 v1.5) by a token key, verified by SunRsaSign. */
    private static void rsaPkcs1(Provider p) throws Exception {
        KeyPair kp = rsaPair(p);
        PublicKey soft = software(kp.getPublic(), "RSA");
        for (int len : new int[] {0, 100, 5000}) {
            byte[] msg = random(len);
            byte[] sig = sign("SHA256withRSA", p, kp.getPrivate(), msg);
            check(sig.length == 256, "an RSA-2048 signature has 256 bytes");
            check(verify("SHA256withRSA", "SunRsaSign", soft, msg, sig), "SHA256withRSA verifies in SunRsaSign");
            // PKCS#1 v1.5 signatures are deterministic: signing again gives the same bytes.
            check(Arrays.equals(sig, sign("SHA256withRSA", p, kp.getPrivate(), msg)), "PKCS#1 v1.5 is deterministic");
        }
        System.out.println("OK SHA256withRSA");
    }

    /** RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) by a token key, verified by SunRsaSign. */
    private static void rsaPss(Provider p) throws Exception {
        KeyPair kp = rsaPair(p);
        PublicKey soft = software(kp.getPublic(), "RSA");
        PSSParameterSpec spec = new PSSParameterSpec("SHA-256", "MGF1", MGF1ParameterSpec.SHA256, 32, 1);
        // "RSASSA-PSS" hashes in Java and signs the digest with CKM_RSA_PKCS_PSS;
        // "SHA256withRSASSA-PSS" hands the message to the token (CKM_SHA256_RSA_PKCS_PSS).
        for (String alg : new String[] {"RSASSA-PSS", "SHA256withRSASSA-PSS"}) {
            byte[] msg = random(777);
            Signature s = Signature.getInstance(alg, p);
            s.setParameter(spec);
            s.initSign(kp.getPrivate());
            s.update(msg);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance("RSASSA-PSS", "SunRsaSign");
            v.setParameter(spec);
            v.initVerify(soft);
            v.update(msg);
            check(v.verify(sig), alg + " verifies in SunRsaSign");
            v.initVerify(soft);
            v.update(random(777));
            check(!v.verify(sig), alg + " does not verify another message");
            System.out.println("OK " + alg);
        }
    }

    /** ECDH with a token key and a SunEC key: both sides compute the same secret. */
    private static void ecdh(Provider p, String curve) throws Exception {
        KeyPairGenerator kpg = KeyPairGenerator.getInstance("EC", p);
        kpg.initialize(new ECGenParameterSpec(curve));
        KeyPair token = kpg.generateKeyPair();
        check(token.getPrivate().toString().contains("token object"), "the ECDH private key is a token object");
        KeyPairGenerator skpg = KeyPairGenerator.getInstance("EC", "SunEC");
        skpg.initialize(new ECGenParameterSpec(curve));
        KeyPair peer = skpg.generateKeyPair();

        KeyAgreement ours = KeyAgreement.getInstance("ECDH", p);
        ours.init(token.getPrivate());
        ours.doPhase(peer.getPublic(), true);
        byte[] a = ours.generateSecret();

        KeyAgreement theirs = KeyAgreement.getInstance("ECDH", "SunEC");
        theirs.init(peer.getPrivate());
        theirs.doPhase(software(token.getPublic(), "EC"), true);
        byte[] b = theirs.generateSecret();
        check(a.length == (curve.equals("secp256r1") ? 32 : 48), "the shared secret is the x coordinate");
        check(Arrays.equals(a, b), "ECDH on " + curve + " equals SunEC's");
        System.out.println("OK ECDH " + curve);
    }

    /** RSA PKCS#1 v1.5 decryption on the token of SunJCE's ciphertexts. */
    private static void rsaDecrypt(Provider p) throws Exception {
        KeyPair kp = rsaPair(p);
        PublicKey soft = software(kp.getPublic(), "RSA");
        for (int len : new int[] {1, 32, 245}) {
            byte[] plain = random(len);
            Cipher enc = Cipher.getInstance("RSA/ECB/PKCS1Padding", "SunJCE");
            enc.init(Cipher.ENCRYPT_MODE, soft);
            byte[] ct = enc.doFinal(plain);
            Cipher dec = Cipher.getInstance("RSA/ECB/PKCS1Padding", p);
            dec.init(Cipher.DECRYPT_MODE, kp.getPrivate());
            check(Arrays.equals(dec.doFinal(ct), plain), "the token decrypts SunJCE's " + len + "-byte ciphertext");
        }
        System.out.println("OK RSA/ECB/PKCS1Padding decrypt");
    }

    private static byte[] random(int n) {
        byte[] b = new byte[n];
        RANDOM.nextBytes(b);
        return b;
    }

    private static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("check failed: " + what);
        }
    }

    private Interop() {}
}
