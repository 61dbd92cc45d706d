// Package testcontainers runs the clusters htapchaos tests against, in containers
// of its own node image: one node, multi-primary Galera, a primary with
// asynchronous GTID replicas, Spider aggregators over leaves ("sharded"), and
// Vitess vtgates over MariaDB shards, optionally behind a load balancer or with a
// proxy on the aggregator -> leaf path.
//
// [Run] provisions a cluster from a [Config] and waits until it has formed; on
// error it returns the partly built cluster, which Terminate removes. Every node
// sits on a private cluster network and has a client network of its own that
// carries its published port (on loopback with a local engine), so a partition
// cuts a node off its peers while clients still reach it. A [Node] handle kills,
// stops, starts, pauses, disconnects and reads the node's memory, state, Galera
// and replica status (package faulttarget adapts a cluster to package faults).
// Containers and networks carry labels, so [List], [Attach]
// and [Remove] work after a crash. [StartForTest] and [SharedForTest] give a test
// a cluster that is removed when it ends. [BuildImage] and [BuildVitessImage]
// build the images from this host's apt sources, with no registry.
package testcontainers
