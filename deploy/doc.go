// Package deploy holds what runs aimind beyond one `./build.sh && bin/aimind
// serve`: the container recipe (container/), the Kubernetes manifests
// (kubernetes/, a Go module of its own for its test's dependencies) and the
// systemd unit (systemd/). Its tests run the real binary: two replicas
// behind a real nginx sharing a keys file, pull then serve offline, the
// recipe's build steps, the unit file check and build.sh's package install.
package deploy
