#!/bin/sh
# The "hello" app: greets and prints its secret. Only shell built-ins, so /bin/sh is all it needs.
# /app/data is encrypted by the conversion; inside the enclave the runtime decrypts it after
# attestation, outside it the file is ciphertext.
read -r secret < /app/data/secret.txt
echo "${GREETING:-Hello} in $PWD: the secret is '$secret'"
