package server

// WatchPeeks exposes the count of looks the disconnect watcher took.
var WatchPeeks = &watchPeeks

// WatchClient exposes the disconnect watcher.
var WatchClient = watchClient
