// Package ui is aimind's web interface: plain HTML, CSS and JavaScript,
// embedded in the binary, with no build step and nothing loaded from outside.
package ui

import "embed"

// Files holds index.html, favicon.ico and assets/.
//
//go:embed index.html favicon.ico assets
var Files embed.FS
