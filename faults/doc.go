// Package faults will own the fault life cycle (set up, inject, wait, recover, clean
// up) and the fault registry. Not built yet: see the fault injector issue. The node
// actions it will use (kill, stop, start, pause, partition, exec, memory stats) are
// on testcontainers.Node today.
package faults
