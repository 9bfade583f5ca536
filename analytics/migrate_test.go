package analytics

import (
	"reflect"
	"testing"
)

func TestStatements(t *testing.T) {
	m := migration{version: 9, sql: `-- a comment; with a semicolon
CREATE TABLE a (x Int8); -- after; the statement
-- when: SELECT 1
INSERT INTO a (x)
    SELECT 1; DROP TABLE b;
`}
	got := m.statements()
	want := []statement{
		{sql: "CREATE TABLE a (x Int8)"},
		{sql: "INSERT INTO a (x)\n    SELECT 1", when: "SELECT 1"},
		{sql: "DROP TABLE b"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statements:\n got %q\nwant %q", got, want)
	}
}
