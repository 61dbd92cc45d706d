package loadgen

import "testing"

// Plans as vtgate v24 printed them (VEXPLAIN PLAN) for the co-located join and
// the join on merchant_id, over 2 shards.
const (
	planPushedDown = `{"OperatorType":"Aggregate","Variant":"Ordered","Inputs":[{"OperatorType":"Route","Variant":"Scatter",
"Keyspace":{"Name":"htapchaos","Sharded":true},"Query":"select o.status, count(*) from orders as o, users as u where u.user_id = o.user_id group by o.status"}]}`
	planJoinAtGate = `{"OperatorType":"Aggregate","Variant":"Ordered","Inputs":[{"OperatorType":"Projection","Inputs":[{"OperatorType":"Sort",
"Inputs":[{"OperatorType":"Join","Variant":"Join","Inputs":[{"OperatorType":"Route","Variant":"Scatter","Query":"select ... from orders"},
{"OperatorType":"Route","Variant":"EqualUnique","Vindex":"hash","Query":"select ... from merchants where merchant_id = :o_merchant_id"}]}]}]}]}`
)

func TestParsePlan(t *testing.T) {
	p, err := ParsePlan(planPushedDown)
	if err != nil || p.Shape != ShapePushedDown || p.Routes["Scatter"] != 1 || len(p.Routes) != 1 {
		t.Errorf("co-located join: %+v %v", p, err)
	}
	p, err = ParsePlan(planJoinAtGate)
	if err != nil || p.Shape != ShapeJoinAtGate || p.Routes["Scatter"] != 1 || p.Routes["EqualUnique"] != 1 {
		t.Errorf("join on merchant_id: %+v %v", p, err)
	}
	if _, err := ParsePlan(`{"OperatorType":"Aggregate"}`); err == nil {
		t.Error("a plan with no route was accepted")
	}
	if _, err := ParsePlan("not json"); err == nil {
		t.Error("not JSON was accepted")
	}
	if q := ShardedQueryOn(VitessEngine, "noncolocated-join-bka"); q != ShardedQueryOn(VitessEngine, "noncolocated-join") || q == ShardedQuery("noncolocated-join") {
		t.Errorf("vitess -bka op runs %q", q)
	}
}
