// OpenSSL's libcrypto, for SHA-256 of plugin files: its assembly uses the CPU's SHA extensions where present
// (about 1.5 GB/s on this project's machines, several times libsodium's portable SHA-256).
#include <openssl/evp.h>
