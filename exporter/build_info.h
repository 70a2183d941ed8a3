#pragma once
// The binary's version (project version, a compile definition) and the source revision it was
// built from (`git describe --always --dirty`, written at build time into a generated source by
// scripts/build_revision.cmake; "unknown" outside a git checkout). Thread-safe: constants.

namespace runbook {

const char* BuildRevision();

}  // namespace runbook
