package abi

// Version is the ABI version this package implements.
const Version = 1

// Export and import names.
const (
	ExportMemory   = "memory"
	ExportVersion  = "pirn_abi_version"
	ExportManifest = "pirn_manifest"
	ExportInvoke   = "pirn_invoke"

	ImportModule = "pirn"
	ImportInput  = "input"
	ImportOutput = "output"
	ImportLog    = "log"

	// The HTTP capability: a module importing these runs only as knots
	// granted outbound HTTP.
	ImportHTTP         = "http"
	ImportHTTPResponse = "http_response"

	// WASIModule is the only other import module a knot may use.
	WASIModule = "wasi_snapshot_preview1"
)

// LogLevel is the level argument of the log import.
type LogLevel int32

// Log levels.
const (
	LogDebug LogLevel = 0
	LogInfo  LogLevel = 1
	LogWarn  LogLevel = 2
	LogError LogLevel = 3
)
