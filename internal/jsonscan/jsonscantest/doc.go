// Package jsonscantest holds what the tests of the decoders built on
// jsonscan share: DocFromBytes, which makes JSON documents of their shapes
// for the fuzz tests, and TextScanner, their fast path written on
// go-json-experiment's jsontext tokenizer instead, for the benchmarks that
// weigh jsonscan against it.
package jsonscantest
