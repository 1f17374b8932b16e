module github.com/aimind/aimind/deploy/kubernetes

go 1.26.8

require (
	github.com/blang/semver/v4 v4.0.0 // indirect
	k8s.io/api v0.37.2 // indirect
	k8s.io/apimachinery v0.37.2 // indirect
	sigs.k8s.io/kustomize/api v0.21.2 // indirect
	sigs.k8s.io/kustomize/kyaml v0.21.2 // indirect
)
