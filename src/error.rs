//! Errors of the core, typed once: `Error`, in the terms of the PKCS#11 specification and
//! mapped to CK_RV in exactly one place (`Error::rv`); a refusal of the KMS rules carries
//! its AWS error (`AwsError`, the exception names of the AWS KMS service model) and
//! message inside it (`Error::Kms`), so that each face renders the one error it got: the
//! C interface its CK_RV, the command line and the endpoint the AWS error.

use cryptoki_sys::*;
use std::fmt;

pub type Result<T> = std::result::Result<T, Error>;

/// What went wrong, in the terms of the PKCS#11 specification, plus the few internal
/// failures (storage, configuration) that have no direct CK_RV of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    ArgumentsBad,
    AttributeReadOnly,
    AttributeSensitive,
    AttributeTypeInvalid,
    AttributeValueInvalid,
    /// The caller's buffer is too short; holds the length that is needed.
    BufferTooSmall(usize),
    CryptokiAlreadyInitialized,
    CryptokiNotInitialized,
    /// The key's curve is one the mechanism does not serve (PKCS#11 3.0).
    CurveNotSupported,
    /// The parameter set a template names is not one the mechanism serves (PKCS#11 3.2).
    ParameterSetNotSupported,
    DataInvalid,
    DataLenRange,
    DomainParamsInvalid,
    EncryptedDataInvalid,
    EncryptedDataLenRange,
    FunctionNotSupported,
    FunctionFailed,
    FunctionNotParallel,
    NoEvent,
    KeyFunctionNotPermitted,
    KeyHandleInvalid,
    KeyIndigestible,
    KeyNotWrappable,
    KeySizeRange,
    KeyTypeInconsistent,
    KeyUnextractable,
    MechanismInvalid,
    MechanismParamInvalid,
    ObjectHandleInvalid,
    OperationActive,
    OperationNotInitialized,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    SessionClosed,
    SessionHandleInvalid,
    SessionParallelNotSupported,
    SessionReadOnly,
    SessionExists,
    SessionReadOnlyExists,
    SessionReadWriteSoExists,
    SignatureInvalid,
    SignatureLenRange,
    SlotIdInvalid,
    TemplateIncomplete,
    TemplateInconsistent,
    TokenNotRecognized,
    UnwrappingKeyHandleInvalid,
    UnwrappingKeySizeRange,
    UnwrappingKeyTypeInconsistent,
    UserAlreadyLoggedIn,
    UserAnotherAlreadyLoggedIn,
    UserNotLoggedIn,
    UserPinNotInitialized,
    UserTooManyTypes,
    UserTypeInvalid,
    WrappedKeyInvalid,
    WrappedKeyLenRange,
    WrappingKeyHandleInvalid,
    WrappingKeySizeRange,
    WrappingKeyTypeInconsistent,
    ActionProhibited,
    HostMemory,
    /// The keystore is out of space.
    DeviceMemory,
    /// The keystore could not be read or written (I/O, corruption); the text says why.
    Storage(String),
    /// Anything else that must not happen; the text says what.
    General(String),
    /// A refusal of the KMS rules: the AWS error and its message, and the CK_RV the C
    /// interface answers for it.
    Kms(Box<KmsError>, CK_RV),
}

named_enum! {
    /// The errors of the AWS KMS service model that the token answers, by their names there
    /// (as the service model and the aws CLI print them).
    pub enum AwsError {
        AccessDenied => "AccessDeniedException",
        AlreadyExists => "AlreadyExistsException",
        Disabled => "DisabledException",
        ExpiredImportToken => "ExpiredImportTokenException",
        IncorrectKey => "IncorrectKeyException",
        IncorrectKeyMaterial => "IncorrectKeyMaterialException",
        InvalidAliasName => "InvalidAliasNameException",
        InvalidCiphertext => "InvalidCiphertextException",
        InvalidImportToken => "InvalidImportTokenException",
        InvalidKeyUsage => "InvalidKeyUsageException",
        KmsInternal => "KMSInternalException",
        KmsInvalidMac => "KMSInvalidMacException",
        KmsInvalidSignature => "KMSInvalidSignatureException",
        KmsInvalidState => "KMSInvalidStateException",
        LimitExceeded => "LimitExceededException",
        MalformedPolicyDocument => "MalformedPolicyDocumentException",
        NotFound => "NotFoundException",
        Tag => "TagException",
        UnsupportedOperation => "UnsupportedOperationException",
        Validation => "ValidationException",
        /// The IAM errors of the named-user commands.
        EntityAlreadyExists => "EntityAlreadyExistsException",
        NoSuchEntity => "NoSuchEntityException",
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl AwsError {
    /// The CK_RV of this refusal where nothing more precise is known.
    fn rv(self) -> CK_RV {
        use AwsError::*;
        match self {
            NotFound | NoSuchEntity => CKR_OBJECT_HANDLE_INVALID,
            KmsInternal => CKR_GENERAL_ERROR,
            Validation
            | LimitExceeded
            | Tag
            | InvalidAliasName
            | MalformedPolicyDocument
            | AlreadyExists
            | EntityAlreadyExists => CKR_ARGUMENTS_BAD,
            InvalidCiphertext | IncorrectKey => CKR_ENCRYPTED_DATA_INVALID,
            KmsInvalidSignature | KmsInvalidMac => CKR_SIGNATURE_INVALID,
            _ => CKR_KEY_FUNCTION_NOT_PERMITTED,
        }
    }
}

/// A refusal in AWS terms: the exception and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsError {
    pub code: AwsError,
    pub message: String,
}

impl KmsError {
    pub fn new(code: AwsError, message: impl Into<String>) -> KmsError {
        KmsError { code, message: message.into() }
    }

    /// This refusal as a core error (its CK_RV by the kind of refusal).
    pub fn to_error(&self) -> Error {
        Error::from(self.clone())
    }
}

impl From<KmsError> for Error {
    fn from(e: KmsError) -> Error {
        let rv = e.code.rv();
        Error::Kms(Box::new(e), rv)
    }
}

impl From<Error> for KmsError {
    fn from(e: Error) -> KmsError {
        match e {
            Error::Kms(k, _) => *k,
            Error::ObjectHandleInvalid | Error::KeyHandleInvalid => KmsError::new(AwsError::NotFound, "Key not found"),
            Error::UserNotLoggedIn => KmsError::new(AwsError::AccessDenied, "log in first"),
            Error::Storage(m) | Error::General(m) => KmsError::new(AwsError::KmsInternal, m),
            other => KmsError::new(AwsError::KmsInternal, other.to_string()),
        }
    }
}

impl Error {
    /// The one mapping from core errors to the return values of the C interface.
    pub fn rv(&self) -> CK_RV {
        use Error::*;
        match self {
            ArgumentsBad => CKR_ARGUMENTS_BAD,
            AttributeReadOnly => CKR_ATTRIBUTE_READ_ONLY,
            AttributeSensitive => CKR_ATTRIBUTE_SENSITIVE,
            AttributeTypeInvalid => CKR_ATTRIBUTE_TYPE_INVALID,
            AttributeValueInvalid => CKR_ATTRIBUTE_VALUE_INVALID,
            BufferTooSmall(_) => CKR_BUFFER_TOO_SMALL,
            CryptokiAlreadyInitialized => CKR_CRYPTOKI_ALREADY_INITIALIZED,
            CryptokiNotInitialized => CKR_CRYPTOKI_NOT_INITIALIZED,
            CurveNotSupported => CKR_CURVE_NOT_SUPPORTED,
            ParameterSetNotSupported => CKR_PARAMETER_SET_NOT_SUPPORTED,
            DataInvalid => CKR_DATA_INVALID,
            DataLenRange => CKR_DATA_LEN_RANGE,
            DomainParamsInvalid => CKR_DOMAIN_PARAMS_INVALID,
            EncryptedDataInvalid => CKR_ENCRYPTED_DATA_INVALID,
            EncryptedDataLenRange => CKR_ENCRYPTED_DATA_LEN_RANGE,
            FunctionNotSupported => CKR_FUNCTION_NOT_SUPPORTED,
            FunctionFailed => CKR_FUNCTION_FAILED,
            FunctionNotParallel => CKR_FUNCTION_NOT_PARALLEL,
            NoEvent => CKR_NO_EVENT,
            KeyFunctionNotPermitted => CKR_KEY_FUNCTION_NOT_PERMITTED,
            KeyHandleInvalid => CKR_KEY_HANDLE_INVALID,
            KeyIndigestible => CKR_KEY_INDIGESTIBLE,
            KeyNotWrappable => CKR_KEY_NOT_WRAPPABLE,
            KeySizeRange => CKR_KEY_SIZE_RANGE,
            KeyTypeInconsistent => CKR_KEY_TYPE_INCONSISTENT,
            KeyUnextractable => CKR_KEY_UNEXTRACTABLE,
            MechanismInvalid => CKR_MECHANISM_INVALID,
            MechanismParamInvalid => CKR_MECHANISM_PARAM_INVALID,
            ObjectHandleInvalid => CKR_OBJECT_HANDLE_INVALID,
            OperationActive => CKR_OPERATION_ACTIVE,
            OperationNotInitialized => CKR_OPERATION_NOT_INITIALIZED,
            PinIncorrect => CKR_PIN_INCORRECT,
            PinInvalid => CKR_PIN_INVALID,
            PinLenRange => CKR_PIN_LEN_RANGE,
            PinLocked => CKR_PIN_LOCKED,
            SessionClosed => CKR_SESSION_CLOSED,
            SessionHandleInvalid => CKR_SESSION_HANDLE_INVALID,
            SessionParallelNotSupported => CKR_SESSION_PARALLEL_NOT_SUPPORTED,
            SessionReadOnly => CKR_SESSION_READ_ONLY,
            SessionExists => CKR_SESSION_EXISTS,
            SessionReadOnlyExists => CKR_SESSION_READ_ONLY_EXISTS,
            SessionReadWriteSoExists => CKR_SESSION_READ_WRITE_SO_EXISTS,
            SignatureInvalid => CKR_SIGNATURE_INVALID,
            SignatureLenRange => CKR_SIGNATURE_LEN_RANGE,
            SlotIdInvalid => CKR_SLOT_ID_INVALID,
            TemplateIncomplete => CKR_TEMPLATE_INCOMPLETE,
            TemplateInconsistent => CKR_TEMPLATE_INCONSISTENT,
            TokenNotRecognized => CKR_TOKEN_NOT_RECOGNIZED,
            UnwrappingKeyHandleInvalid => CKR_UNWRAPPING_KEY_HANDLE_INVALID,
            UnwrappingKeySizeRange => CKR_UNWRAPPING_KEY_SIZE_RANGE,
            UnwrappingKeyTypeInconsistent => CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
            UserAlreadyLoggedIn => CKR_USER_ALREADY_LOGGED_IN,
            UserAnotherAlreadyLoggedIn => CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
            UserNotLoggedIn => CKR_USER_NOT_LOGGED_IN,
            UserPinNotInitialized => CKR_USER_PIN_NOT_INITIALIZED,
            UserTooManyTypes => CKR_USER_TOO_MANY_TYPES,
            UserTypeInvalid => CKR_USER_TYPE_INVALID,
            WrappedKeyInvalid => CKR_WRAPPED_KEY_INVALID,
            WrappedKeyLenRange => CKR_WRAPPED_KEY_LEN_RANGE,
            WrappingKeyHandleInvalid => CKR_WRAPPING_KEY_HANDLE_INVALID,
            WrappingKeySizeRange => CKR_WRAPPING_KEY_SIZE_RANGE,
            WrappingKeyTypeInconsistent => CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
            ActionProhibited => CKR_ACTION_PROHIBITED,
            HostMemory => CKR_HOST_MEMORY,
            DeviceMemory => CKR_DEVICE_MEMORY,
            Storage(_) => CKR_DEVICE_ERROR,
            General(_) => CKR_GENERAL_ERROR,
            Kms(_, rv) => *rv,
        }
    }

    /// A refusal of the KMS rules, answered to the C interface with `rv`.
    pub fn kms(e: KmsError, rv: CK_RV) -> Self {
        Error::Kms(Box::new(e), rv)
    }

    pub fn storage(what: impl fmt::Display) -> Self {
        Error::Storage(what.to_string())
    }

    pub fn general(what: impl fmt::Display) -> Self {
        Error::General(what.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Storage(s) => write!(f, "keystore: {s}"),
            Error::General(s) => write!(f, "internal: {s}"),
            Error::BufferTooSmall(n) => write!(f, "buffer too small, {n} bytes needed"),
            Error::Kms(e, _) => write!(f, "{}: {}", e.code.name(), e.message),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi::ErrorCode;
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::DiskFull => {
                log::error!("keystore: disk full: {e}");
                Error::DeviceMemory
            }
            _ => Error::Storage(e.to_string()),
        }
    }
}
