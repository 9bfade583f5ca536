package sdk_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/pollcast/pollcast/analytics"
	"github.com/pollcast/pollcast/poll"
	"github.com/pollcast/pollcast/sdk"
)

// TestWireTypesMatchServer holds the SDK's copies of the API's JSON shapes
// to the server's own types: a value with every field set goes from one to
// the other and back with no field unknown to either side and nothing lost.
// The SDK does not import the server's packages, so this is what keeps the
// two in step.
func TestWireTypesMatchServer(t *testing.T) {
	pairs := []struct {
		name        string
		server, sdk any
	}{
		{"poll", &poll.View{}, &sdk.Poll{}},
		{"option", &poll.Option{}, &sdk.Option{}},
		{"results", &poll.Results{}, &sdk.Results{}},
		{"timeline point", &analytics.Point{}, &sdk.Point{}},
		{"breakdown row", &analytics.Row{}, &sdk.Row{}},
	}
	for _, p := range pairs {
		t.Run(p.name, func(t *testing.T) {
			roundTrip(t, p.server, p.sdk)
			roundTrip(t, p.sdk, p.server)
		})
	}
}

// roundTrip fills from with every field set, decodes its JSON into to
// refusing unknown fields, and checks to encodes to the same JSON.
func roundTrip(t *testing.T, from, to any) {
	t.Helper()
	fill(reflect.ValueOf(from).Elem())
	want, err := json.Marshal(from)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(want))
	dec.DisallowUnknownFields()
	if err := dec.Decode(to); err != nil {
		t.Fatalf("%T -> %T: %v (JSON %s)", from, to, err, want)
	}
	got, err := json.Marshal(to)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%T -> %T lost something:\n got %s\nwant %s", from, to, got, want)
	}
}

// fill sets every exported field of v to a value that is not zero.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0))
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		v.SetMapIndex(k, e)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float64:
		v.SetFloat(0.5)
	}
}
