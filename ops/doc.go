// Package ops holds no code: its tests check the operations files of the
// repository for real — the systemd unit (systemd/usipipo.service), the
// release build (`make release`), the installer (scripts/install.sh) and the
// monitoring files (scripts/monitoring/) — with the tools that consume them
// (systemd-analyze, shellcheck, dash, promtool) against freshly built
// binaries and live nodes on 127.0.0.1.
//
// A test whose tool is missing is skipped with the Debian package to
// install; the builds and the installer runs are skipped under -short.
// USIPIPO_RELEASE_COLD=1 makes the reproducibility test rebuild everything
// with an empty build cache.
package ops
