#!/bin/sh
# Make the database's TLS certificate: a private CA for the clinic and a
# server certificate signed by it for the names gateways connect to.
#
#   deploy/tls/make-certs.sh SECRETS_DIR NAME [NAME …]
#
# NAMEs are DNS names or IP addresses of the database (add `db`, the name the
# compose services use, and `localhost`/127.0.0.1 for a gateway on the same
# host). Writes ca.crt, ca.key, server.crt and server.key into SECRETS_DIR
# (keys mode 0600). Gateways get ca.crt only and connect with
# sslmode=verify-full; keep ca.key offline. It refuses to overwrite a CA.
set -eu
umask 077
if [ "$#" -lt 2 ]; then
    echo "usage: $0 SECRETS_DIR NAME [NAME ...]" >&2
    exit 2
fi
dir=$1
shift
mkdir -p "$dir"
if [ -e "$dir/ca.key" ]; then
    echo "$0: $dir/ca.key exists; not replacing the clinic's CA" >&2
    exit 1
fi
san=""
for name in "$@"; do
    case $name in
        *[!0-9.]*) entry="DNS:$name" ;;
        *) entry="IP:$name" ;;
    esac
    san="${san:+$san,}$entry"
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# P-256 keys: accepted by every libpq and OpenSSL in use, small for a Pi.
openssl req -new -x509 -nodes -days 3650 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/CN=Paceline clinic CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -subj "/CN=$1" -keyout "$dir/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" \
    > "$work/ext"
openssl x509 -req -in "$work/server.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -CAcreateserial -days 825 -extfile "$work/ext" -out "$dir/server.crt" 2>/dev/null
rm -f "$dir/ca.srl"
chmod 0644 "$dir/ca.crt" "$dir/server.crt"
echo "$dir: ca.crt, server.crt (for $san), ca.key and server.key (0600)"
