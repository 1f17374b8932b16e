package server

// WatchPeeks exposes the count of looks the disconnect watcher took.
var WatchPeeks = &watchPeeks

// WatchClient exposes the disconnect watcher.
var WatchClient = watchClient

// HoldTokenizers takes every tokenizing slot of s until release is called.
func HoldTokenizers(s *Server) (release func()) {
	n := cap(s.tokenizing)
	for i := 0; i < n; i++ {
		s.tokenizing <- struct{}{}
	}
	return func() {
		for i := 0; i < n; i++ {
			<-s.tokenizing
		}
	}
}
