package testcontainers_test

import (
	"context"
	"fmt"
	"log"
	"time"

	htc "github.com/htapchaos/htapchaos/testcontainers"
)

// Start a 3-node Galera cluster, lose node 2, and get it back.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := htc.Run(ctx, htc.Config{Topology: htc.Galera, Nodes: 3, Memory: 1 << 30})
	defer c.Terminate(context.Background()) // also cleans up a partly built cluster
	if err != nil {
		log.Fatal(err)
	}
	n2, _ := c.Node(2)
	if err := n2.Kill(ctx); err != nil {
		log.Fatal(err)
	}
	g, _ := c.Nodes[0].GaleraStatus(ctx)
	fmt.Println("node 1 sees", g)
	if err := n2.Start(ctx); err != nil { // waits until rejoined and Synced
		log.Fatal(err)
	}
}
