# shellcheck shell=bash
# TLS material for a stack: a CA, a localhost server certificate valid N days and a certificate
# that expired yesterday (OpenSSL 3 refuses negative -days, so `openssl ca -startdate/-enddate`).
# Everything is generated fresh inside $TLS_DIR by the unprivileged user.

TLS_SERVER_NAME=localhost
TLS_EXPIRED_SERVER_NAME=expired.test

# openssl as the unprivileged user, chatter into its own setup log (runs alongside initdb).
tls_openssl() {
  printf '+ openssl %s\n' "$*" >>"$TLS_SETUP_LOG"
  as_user "$OPENSSL_BIN" "$@" >>"$TLS_SETUP_LOG" 2>&1
}

tls_write_ca_config() {
  write_file "$TLS_DIR/ca.cnf" <<EOF
# Minimal CA for a throwaway runbook_exporter test stack (written by scripts/stack.sh).
[ ca ]
default_ca = stack_ca

[ stack_ca ]
dir             = $TLS_DIR/ca-db
database        = \$dir/index.txt
new_certs_dir   = \$dir/newcerts
serial          = \$dir/serial
certificate     = $TLS_DIR/ca.pem
private_key     = $TLS_DIR/ca.key
default_md      = sha256
policy          = policy_loose
unique_subject  = no
copy_extensions = none
email_in_dn     = no

[ policy_loose ]
commonName       = supplied
organizationName = optional

[ req ]
distinguished_name = req_dn
prompt             = no

[ req_dn ]
CN = unused

[ ext_ca ]
basicConstraints     = critical, CA:true
keyUsage             = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[ ext_localhost ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:$TLS_SERVER_NAME, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ ext_expired ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:$TLS_EXPIRED_SERVER_NAME
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
}

tls_new_key() { # FILE
  tls_openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"
  chmod 600 "$1"
}

# Generates ca.pem, server.pem/.key (CN=localhost, DAYS days) and expired.pem/.key.
tls_generate() { # DAYS
  local days=$1 cnf=$TLS_DIR/ca.cnf start end
  as_user mkdir -p "$TLS_DIR/ca-db/newcerts"
  : | write_file "$TLS_DIR/ca-db/index.txt"
  printf '%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" | write_file "$TLS_DIR/ca-db/serial"
  tls_write_ca_config

  tls_new_key "$TLS_DIR/ca.key"
  tls_openssl req -new -x509 -config "$cnf" -extensions ext_ca -key "$TLS_DIR/ca.key" \
    -subj "/O=runbook_exporter test stack/CN=runbook-stack CA" -days 3650 -out "$TLS_DIR/ca.pem"

  tls_new_key "$TLS_DIR/server.key"
  tls_openssl req -new -config "$cnf" -key "$TLS_DIR/server.key" \
    -subj "/O=runbook_exporter test stack/CN=$TLS_SERVER_NAME" -out "$TLS_DIR/server.csr"
  tls_openssl ca -batch -notext -config "$cnf" -extensions ext_localhost -days "$days" \
    -in "$TLS_DIR/server.csr" -out "$TLS_DIR/server.pem"

  # Valid from 30 days ago until yesterday.
  start=$(date -u -d '30 days ago' +%y%m%d%H%M%SZ)
  end=$(date -u -d '1 day ago' +%y%m%d%H%M%SZ)
  tls_new_key "$TLS_DIR/expired.key"
  tls_openssl req -new -config "$cnf" -key "$TLS_DIR/expired.key" \
    -subj "/O=runbook_exporter test stack/CN=$TLS_EXPIRED_SERVER_NAME" -out "$TLS_DIR/expired.csr"
  tls_openssl ca -batch -notext -config "$cnf" -extensions ext_expired \
    -startdate "$start" -enddate "$end" -in "$TLS_DIR/expired.csr" -out "$TLS_DIR/expired.pem"
}

# notAfter of a certificate as Unix seconds.
tls_not_after_epoch() { # CERT
  local na
  na=$("$OPENSSL_BIN" x509 -in "$1" -noout -enddate)
  date -u -d "${na#notAfter=}" +%s
}

# openssl s_server on 127.0.0.1:PORT: localhost cert by default, the expired one for SNI
# expired.test. Launcher for start_with_port_retry.
launch_tls_server() { # PORT
  local port=$1
  spawn_listening tls "$TLS_LOG" "$port" "$OPENSSL_BIN" s_server -accept "127.0.0.1:$port" \
    -cert "$TLS_DIR/server.pem" -key "$TLS_DIR/server.key" \
    -servername "$TLS_EXPIRED_SERVER_NAME" -cert2 "$TLS_DIR/expired.pem" -key2 "$TLS_DIR/expired.key" \
    -www -quiet || return 1
  TLS_PORT=$port
  TLS_SERVER_PID=$SPAWNED_PID
}
