/*
 * kmstoken.h - vendor constants of the kmstoken PKCS#11 module.
 *
 * Include after pkcs11.h. Every value lies in the CKA_/CKM_VENDOR_DEFINED space
 * (0x80000000) with the prefix 0x4B4D ("KM"). The Rust module src/vendor.rs holds the
 * same values; a test keeps the two equal.
 */
#ifndef KMSTOKEN_H
#define KMSTOKEN_H

/* Attributes (read-only unless stated): the KMS life of a token key. */
#define CKA_KMSTOKEN_KEY_ID          0xCB4D0001UL /* UTF-8 KeyId (UUID text) */
#define CKA_KMSTOKEN_KEY_STATE       0xCB4D0002UL /* CK_ULONG, CKK_KMSTOKEN_STATE_* */
#define CKA_KMSTOKEN_KEY_VERSION     0xCB4D0003UL /* CK_ULONG, material version */

/* Key states (values of CKA_KMSTOKEN_KEY_STATE). */
#define KMSTOKEN_STATE_ENABLED          1UL
#define KMSTOKEN_STATE_DISABLED         2UL
#define KMSTOKEN_STATE_PENDING_DELETION 3UL
#define KMSTOKEN_STATE_PENDING_IMPORT   4UL

/* Mechanisms: the KMS ciphertext blob (reserved; served from a later release). */
#define CKM_KMSTOKEN_ENCRYPT         0xCB4D0101UL
#define CKM_KMSTOKEN_DECRYPT         0xCB4D0102UL

#endif /* KMSTOKEN_H */
