/*
 * nmcsign: what `namecoin-cli signmessage ADDRESS MESSAGE` and `getnewaddress
 * "" legacy` print, for a private key given in hex, built on libsecp256k1
 * (the library Namecoin Core signs with). A test-data tool: no Namecoin Core
 * runs here. Follows namecoin-core (read, not copied): src/common/signmessage.cpp
 * MessageSign/MessageHash (SHA-256d of CompactSize-prefixed "Namecoin Signed
 * Message:\n" and message), src/key.cpp SignCompact (RFC 6979 nonce, header
 * 27 + recid + 4 for a compressed key), src/kernel/chainparams.cpp (P2PKH
 * version 52 on mainnet).
 *
 *   nmcsign address PRIVHEX            -> the key's P2PKH address (compressed key)
 *   nmcsign sign PRIVHEX MESSAGE_FILE  -> base64 signature of the file's bytes
 */
#include <secp256k1.h>
#include <secp256k1_recovery.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *m) { fprintf(stderr, "nmcsign: %s\n", m); exit(1); }

static void digest(const char *alg, const unsigned char *in, size_t n, unsigned char *out) {
  unsigned int len = 0;
  if (!EVP_Digest(in, n, out, &len, EVP_get_digestbyname(alg), NULL)) die(alg);
}

static void hex32(const char *h, unsigned char out[32]) {
  if (strlen(h) != 64) die("private key: 64 hex digits");
  for (int i = 0; i < 32; i++) if (sscanf(h + 2 * i, "%2hhx", &out[i]) != 1) die("private key: not hex");
}

static size_t compact_size(unsigned char *out, size_t n) {
  if (n < 253) { out[0] = (unsigned char)n; return 1; }
  if (n > 0xffff) die("message too long");
  out[0] = 253; out[1] = n & 0xff; out[2] = n >> 8; return 3;
}

static void base58check(const unsigned char *payload, size_t n, char *out) {
  static const char *A = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
  unsigned char buf[64], h[32], h2[32], digits[128];
  memcpy(buf, payload, n);
  digest("SHA256", buf, n, h); digest("SHA256", h, 32, h2);
  memcpy(buf + n, h2, 4); n += 4;
  size_t nd = 0, zeros = 0;
  while (zeros < n && buf[zeros] == 0) zeros++;
  for (size_t i = 0; i < n; i++) {
    int carry = buf[i];
    for (size_t j = 0; j < nd; j++) { carry += digits[j] << 8; digits[j] = carry % 58; carry /= 58; }
    while (carry) { digits[nd++] = carry % 58; carry /= 58; }
  }
  size_t k = 0;
  for (size_t i = 0; i < zeros; i++) out[k++] = '1';
  while (nd) out[k++] = A[digits[--nd]];
  out[k] = 0;
}

int main(int argc, char **argv) {
  if (argc < 3) die("usage: nmcsign address PRIVHEX | nmcsign sign PRIVHEX MESSAGE_FILE");
  secp256k1_context *ctx = secp256k1_context_create(SECP256K1_CONTEXT_SIGN | SECP256K1_CONTEXT_VERIFY);
  unsigned char key[32];
  hex32(argv[2], key);
  if (!secp256k1_ec_seckey_verify(ctx, key)) die("private key out of range");
  if (strcmp(argv[1], "address") == 0) {
    secp256k1_pubkey pub;
    unsigned char ser[33], h[32], payload[21];
    size_t len = sizeof ser;
    if (!secp256k1_ec_pubkey_create(ctx, &pub, key)) die("pubkey");
    secp256k1_ec_pubkey_serialize(ctx, ser, &len, &pub, SECP256K1_EC_COMPRESSED);
    digest("SHA256", ser, len, h);
    payload[0] = 52;
    digest("RIPEMD160", h, 32, payload + 1);
    char addr[64];
    base58check(payload, 21, addr);
    printf("%s\n", addr);
    return 0;
  }
  if (strcmp(argv[1], "sign") != 0 || argc != 4) die("usage");
  FILE *f = fopen(argv[3], "rb");
  if (!f) die("cannot open message file");
  static unsigned char msg[65536];
  size_t mlen = fread(msg, 1, sizeof msg - 1, f);
  fclose(f);
  static const char magic[] = "Namecoin Signed Message:\n";
  static unsigned char ser[70000];
  size_t n = compact_size(ser, strlen(magic));
  memcpy(ser + n, magic, strlen(magic)); n += strlen(magic);
  n += compact_size(ser + n, mlen);
  memcpy(ser + n, msg, mlen); n += mlen;
  unsigned char h1[32], hash[32];
  digest("SHA256", ser, n, h1); digest("SHA256", h1, 32, hash);
  secp256k1_ecdsa_recoverable_signature sig;
  if (!secp256k1_ecdsa_sign_recoverable(ctx, &sig, hash, key, secp256k1_nonce_function_rfc6979, NULL)) die("sign");
  unsigned char out[65];
  int recid = 0;
  secp256k1_ecdsa_recoverable_signature_serialize_compact(ctx, out + 1, &recid, &sig);
  out[0] = 27 + recid + 4;
  unsigned char b64[100];
  EVP_EncodeBlock(b64, out, 65);
  printf("%s\n", b64);
  secp256k1_context_destroy(ctx);
  return 0;
}
