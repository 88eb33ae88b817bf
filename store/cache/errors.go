package cache

import "errors"

// ErrNegativeMaxBytes is returned by New when Options.MaxBytes is negative.
var ErrNegativeMaxBytes = errors.New("cache: MaxBytes must not be negative")

// ErrMetricsInUse is returned by New when Options.Metrics already holds the
// usipipo_cache_bytes gauge, i.e. another open Cache reports on the same set.
var ErrMetricsInUse = errors.New("cache: metrics set already has a cache registered")

// ErrComputePanicked is returned by GetOrCompute to callers that waited on a
// compute which panicked; the panic itself propagates in the caller that ran
// the compute.
var ErrComputePanicked = errors.New("cache: compute panicked")
