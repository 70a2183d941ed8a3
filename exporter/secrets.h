#pragma once
// Credentials by reference: a password is read from its file (or environment variable) at every
// connect, so a rotated password needs no reload. Never logged.

#include <string>

#include "runbook/status.h"

namespace runbook {

// Reads the password from `file` (one trailing newline is dropped) or else from the environment
// variable `env`; leaves `out` empty when both are empty. A missing file or variable is kAuth.
Status ReadPassword(const std::string& file, const std::string& env, std::string& out);

}  // namespace runbook
