// Package experiments will own experiment specs, the runner and the scorers. Not
// built yet: see the experiments issue.
package experiments
