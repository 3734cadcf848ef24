package window

// What the external tests read of a Log's internals.

// LogEntries returns the number of entries l holds.
func LogEntries(l *Log) int { return l.entries() }

// LogBytes returns the size of l's state allocation.
func LogBytes(l *Log) int { return l.size() }
