# shellcheck shell=bash
# TLS material for a stack: a CA, a localhost server certificate valid N days and a certificate
# that expired yesterday (OpenSSL 3 refuses negative -days, so `openssl ca -startdate/-enddate`).
# Plus the certificate collector's cases: a certificate valid 10 days, a self-signed one, a leaf
# whose intermediate CA expires before it, and a PEM bundle of that chain (EC keys: milliseconds).
# Everything is generated fresh inside $TLS_DIR by the unprivileged user.

TLS_SERVER_NAME=localhost
TLS_EXPIRED_SERVER_NAME=expired.test
TLS_SOON_SERVER_NAME=soon.test
TLS_SELF_SERVER_NAME=self.test
TLS_CHAIN_SERVER_NAME=chain.test

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
organizationalUnitName = optional

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

[ ext_soon ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:$TLS_SOON_SERVER_NAME
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid

[ ext_self ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:$TLS_SELF_SERVER_NAME
subjectKeyIdentifier   = hash

[ ext_chain ]
basicConstraints       = critical, CA:false
keyUsage               = critical, digitalSignature
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:$TLS_CHAIN_SERVER_NAME, email:ops@chain.test
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid
EOF
}

tls_new_key() { # FILE
  tls_openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"
  chmod 600 "$1"
}

tls_new_ec_key() { # FILE
  tls_openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
  chmod 600 "$1"
}

# An EC key NAME.key, a CSR for SUBJECT, then NAME.pem from `openssl ca` with CONFIG's EXT.
tls_issue() { # CONFIG NAME SUBJECT EXT CA-ARGS...
  local cnf=$1 name=$2 subj=$3 ext=$4
  shift 4
  tls_new_ec_key "$TLS_DIR/$name.key"
  tls_openssl req -new -config "$cnf" -key "$TLS_DIR/$name.key" -subj "$subj" -out "$TLS_DIR/$name.csr"
  tls_openssl ca -batch -notext -config "$cnf" -extensions "$ext" "$@" \
    -in "$TLS_DIR/$name.csr" -out "$TLS_DIR/$name.pem"
}

# The collector's cases: soon.pem (10 days), self.pem (self-signed), chain-leaf.pem (60 days,
# OU "leaf unit") under intermediate.pem (20 days), bundle.pem = leaf + intermediate + CA.
tls_generate_cases() {
  local cnf=$TLS_DIR/ca.cnf icnf=$TLS_DIR/intermediate.cnf
  tls_issue "$cnf" soon "/O=runbook_exporter test stack/CN=$TLS_SOON_SERVER_NAME" ext_soon -days 10

  tls_new_ec_key "$TLS_DIR/self.key"
  tls_openssl req -new -x509 -config "$cnf" -extensions ext_self -key "$TLS_DIR/self.key" \
    -subj "/O=runbook_exporter test stack/CN=$TLS_SELF_SERVER_NAME" -days 90 -out "$TLS_DIR/self.pem"

  tls_issue "$cnf" intermediate "/O=runbook_exporter test stack/CN=runbook-stack intermediate" ext_ca -days 20
  # The intermediate signs with its own CA database.
  as_user mkdir -p "$TLS_DIR/int-db/newcerts"
  : | write_file "$TLS_DIR/int-db/index.txt"
  printf '%s\n' "$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" | write_file "$TLS_DIR/int-db/serial"
  sed -e "s|^dir .*|dir             = $TLS_DIR/int-db|" \
    -e "s|^certificate .*|certificate     = $TLS_DIR/intermediate.pem|" \
    -e "s|^private_key .*|private_key     = $TLS_DIR/intermediate.key|" "$cnf" | write_file "$icnf"
  tls_issue "$icnf" chain-leaf "/O=runbook_exporter test stack/OU=leaf unit/CN=$TLS_CHAIN_SERVER_NAME" \
    ext_chain -days 60
  cat "$TLS_DIR/chain-leaf.pem" "$TLS_DIR/intermediate.pem" "$TLS_DIR/ca.pem" | write_file "$TLS_DIR/bundle.pem"
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
  tls_generate_cases
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

# The certificate valid 10 days by default, the self-signed one for SNI self.test.
launch_tls_soon_server() { # PORT
  local port=$1
  spawn_listening tls_soon "$TLS_LOG" "$port" "$OPENSSL_BIN" s_server -accept "127.0.0.1:$port" \
    -cert "$TLS_DIR/soon.pem" -key "$TLS_DIR/soon.key" \
    -servername "$TLS_SELF_SERVER_NAME" -cert2 "$TLS_DIR/self.pem" -key2 "$TLS_DIR/self.key" \
    -www -quiet || return 1
  TLS_SOON_PORT=$port
  TLS_SOON_SERVER_PID=$SPAWNED_PID
}

# The leaf under the short-lived intermediate, presented together with that intermediate.
launch_tls_chain_server() { # PORT
  local port=$1
  spawn_listening tls_chain "$TLS_LOG" "$port" "$OPENSSL_BIN" s_server -accept "127.0.0.1:$port" \
    -cert "$TLS_DIR/chain-leaf.pem" -key "$TLS_DIR/chain-leaf.key" -cert_chain "$TLS_DIR/intermediate.pem" \
    -www -quiet || return 1
  TLS_CHAIN_PORT=$port
  TLS_CHAIN_SERVER_PID=$SPAWNED_PID
}
