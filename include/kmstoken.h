/*
 * kmstoken.h - vendor constants of the kmstoken PKCS#11 module.
 *
 * Include after pkcs11.h. Every value lies in the CKA_/CKM_VENDOR_DEFINED space
 * (0x80000000) with the prefix 0x4B4D ("KM"). The Rust module src/vendor.rs holds the
 * same values; a test keeps the two equal.
 */
#ifndef KMSTOKEN_H
#define KMSTOKEN_H

/* Attributes (read-only through PKCS#11; the kmstoken command changes them): the KMS
 * life of a token key. */
#define CKA_KMSTOKEN_KEY_ID                0xCB4D0001UL /* UTF-8 KeyId (UUID text) */
#define CKA_KMSTOKEN_KEY_STATE             0xCB4D0002UL /* CK_ULONG, KMSTOKEN_STATE_* */
#define CKA_KMSTOKEN_KEY_VERSION           0xCB4D0003UL /* CK_ULONG, material version (1 = first) */
#define CKA_KMSTOKEN_KEY_SPEC              0xCB4D0004UL /* UTF-8 KeySpec (SYMMETRIC_DEFAULT, HMAC_256, ...) */
#define CKA_KMSTOKEN_KEY_USAGE             0xCB4D0005UL /* UTF-8 KeyUsage (ENCRYPT_DECRYPT, SIGN_VERIFY, ...) */
#define CKA_KMSTOKEN_ORIGIN                0xCB4D0006UL /* UTF-8 Origin (AWS_KMS or EXTERNAL) */
#define CKA_KMSTOKEN_CREATION_DATE         0xCB4D0007UL /* CK_ULONG, seconds since the epoch */
#define CKA_KMSTOKEN_DESCRIPTION           0xCB4D0008UL /* UTF-8 Description */
#define CKA_KMSTOKEN_DELETION_DATE         0xCB4D0009UL /* CK_ULONG, seconds since the epoch; 0 = none */
#define CKA_KMSTOKEN_PENDING_WINDOW_DAYS   0xCB4D000AUL /* CK_ULONG; 0 = none */
#define CKA_KMSTOKEN_ROTATION_ENABLED      0xCB4D000BUL /* CK_BBOOL */
#define CKA_KMSTOKEN_ROTATION_PERIOD_DAYS  0xCB4D000CUL /* CK_ULONG */
#define CKA_KMSTOKEN_NEXT_ROTATION_DATE    0xCB4D000DUL /* CK_ULONG, seconds since the epoch; 0 = none */
#define CKA_KMSTOKEN_ON_DEMAND_ROTATIONS   0xCB4D000EUL /* CK_ULONG, on-demand rotations so far */
#define CKA_KMSTOKEN_ARN                   0xCB4D000FUL /* UTF-8 arn:kmstoken:kms:local:<serial>:key/<id> */
#define CKA_KMSTOKEN_CURRENT               0xCB4D0010UL /* CK_BBOOL: FALSE on an earlier version's read-only object */
/* Imported key material (Origin EXTERNAL). */
#define CKA_KMSTOKEN_VALID_TO              0xCB4D0020UL /* CK_ULONG, seconds since the epoch; 0 = does not expire; absent = no material */
#define CKA_KMSTOKEN_MATERIAL_FINGERPRINT  0xCB4D0021UL /* keyed fingerprint of the first material imported (never readable) */
#define CKA_KMSTOKEN_IMPORT_PARAMETERS     0xCB4D0022UL /* sealed wrapping key of the latest import parameters (never readable) */
#define CKA_KMSTOKEN_KEY_POLICY            0xCB4D0011UL /* UTF-8 JSON key policy set by put-key-policy; absent: the default policy */

/* Key states (values of CKA_KMSTOKEN_KEY_STATE). */
#define KMSTOKEN_STATE_ENABLED          1UL
#define KMSTOKEN_STATE_DISABLED         2UL
#define KMSTOKEN_STATE_PENDING_DELETION 3UL
#define KMSTOKEN_STATE_PENDING_IMPORT   4UL

/* Mechanisms: the KMS ciphertext blob (reserved; served from a later release). */
#define CKM_KMSTOKEN_ENCRYPT         0xCB4D0101UL
#define CKM_KMSTOKEN_DECRYPT         0xCB4D0102UL

#endif /* KMSTOKEN_H */
