package dispatch

// DecodeResult exposes decodeResult to the package's external tests.
var DecodeResult = decodeResult
