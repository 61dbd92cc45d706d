// Package loadgen will own the workloads (OLTP, analytics, batch), the open-loop
// pacer and the routing of operations to nodes. Not built yet: see the load
// generator issue.
package loadgen
