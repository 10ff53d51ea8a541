package host

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/pirn-wasm/pirn/abi"
)

// callKey carries the *instance of the current guest call to the host
// functions (which are shared by every instance of a runtime).
type callKey struct{}

func current(ctx context.Context) *instance {
	inst, _ := ctx.Value(callKey{}).(*instance)
	return inst
}

// importSigs are the signatures of the pirn imports, for checking modules.
var importSigs = map[string][2][]api.ValueType{
	abi.ImportInput:  {{api.ValueTypeI32}, nil},
	abi.ImportOutput: {{api.ValueTypeI32, api.ValueTypeI32}, nil},
	abi.ImportLog:    {{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, nil},
	// Capabilities.
	abi.ImportHTTP:         {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI32}},
	abi.ImportHTTPResponse: {{api.ValueTypeI32}, nil},
}

func hostModule(rt wazero.Runtime) wazero.HostModuleBuilder {
	b := rt.NewHostModuleBuilder(abi.ImportModule)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostInput),
		importSigs[abi.ImportInput][0], nil).Export(abi.ImportInput)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostOutput),
		importSigs[abi.ImportOutput][0], nil).Export(abi.ImportOutput)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostLog),
		importSigs[abi.ImportLog][0], nil).Export(abi.ImportLog)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostHTTP),
		importSigs[abi.ImportHTTP][0], importSigs[abi.ImportHTTP][1]).Export(abi.ImportHTTP)
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(hostHTTPResponse),
		importSigs[abi.ImportHTTPResponse][0], nil).Export(abi.ImportHTTPResponse)
	return b
}

// violation is panicked by a host function to stop the guest; the call
// returns it wrapped, and Invoke turns it into an err response.
type violation struct {
	typ string // one of the Err* types
	msg string
}

func (v *violation) Error() string { return v.msg }

func abort(inst *instance, typ, format string, args ...any) {
	v := &violation{typ: typ, msg: fmt.Sprintf(format, args...)}
	if inst != nil && inst.violation == nil {
		inst.violation = v
	}
	panic(v)
}

func hostInput(ctx context.Context, m api.Module, stack []uint64) {
	inst := current(ctx)
	if inst == nil {
		abort(nil, ErrABI, "input called outside an invocation")
	}
	ptr := api.DecodeU32(stack[0])
	if inst.inputTaken {
		abort(inst, ErrABI, "input called twice in one invocation")
	}
	inst.inputTaken = true
	if !m.Memory().Write(ptr, inst.req) {
		abort(inst, ErrABI, "input(ptr=%d): %d request bytes do not fit in memory of %d bytes", ptr, len(inst.req), m.Memory().Size())
	}
}

func hostOutput(ctx context.Context, m api.Module, stack []uint64) {
	inst := current(ctx)
	if inst == nil {
		abort(nil, ErrABI, "output called outside an invocation")
	}
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if inst.outputSet {
		abort(inst, ErrABI, "output called twice in one invocation")
	}
	// A range outside memory is a broken guest whatever its size; a real
	// output larger than MaxOutput is a limit.
	if uint64(ptr)+uint64(n) > uint64(m.Memory().Size()) {
		abort(inst, ErrABI, "output(ptr=%d, len=%d) lies outside memory of %d bytes", ptr, n, m.Memory().Size())
	}
	if int64(n) > int64(inst.lim.MaxOutput) {
		abort(inst, ErrLimit, "output of %d bytes exceeds the limit MaxOutput=%d", n, inst.lim.MaxOutput)
	}
	b, _ := m.Memory().Read(ptr, n)
	inst.resp = append(inst.resp[:0], b...)
	inst.outputSet = true
}

func hostLog(ctx context.Context, m api.Module, stack []uint64) {
	inst := current(ctx)
	if inst == nil {
		abort(nil, ErrABI, "log called outside an invocation")
	}
	level, ptr, n := abi.LogLevel(api.DecodeI32(stack[0])), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		abort(inst, ErrABI, "log(ptr=%d, len=%d) lies outside memory of %d bytes", ptr, n, m.Memory().Size())
	}
	if v := inst.charge(len(b), true); v != nil {
		panic(v) // ends the invocation now: a flood is not waited out
	}
	msg := strings.ToValidUTF8(string(b), "\uFFFD")
	inst.keep(slogLevel(level), msg) // a level the guest made up is info
	inst.log(ctx, slogLevel(level), msg, slog.String(AttrStream, "log"))
}

func slogLevel(l abi.LogLevel) slog.Level {
	switch l {
	case abi.LogDebug:
		return slog.LevelDebug
	case abi.LogWarn:
		return slog.LevelWarn
	case abi.LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// stream is a guest's stdout or stderr: complete lines become log records.
type stream struct {
	inst  *instance
	name  string
	level slog.Level
	buf   []byte
}

func (s *stream) Write(p []byte) (int, error) {
	inst := s.inst
	if v := inst.charge(len(p), false); v != nil {
		panic(v) // ends the invocation now: a flood is not waited out
	}
	s.buf = append(s.buf, p...)
	for {
		i := bytes.IndexByte(s.buf, '\n')
		if i < 0 {
			break
		}
		if v := inst.charge(0, true); v != nil {
			s.buf = nil // nothing more of this flood is emitted
			panic(v)
		}
		s.emit(s.buf[:i])
		s.buf = s.buf[i+1:]
	}
	if len(s.buf) == 0 {
		s.buf = nil
	}
	return len(p), nil
}

func (s *stream) emit(line []byte) {
	s.inst.noteStderr(s.name, line)
	s.inst.keep(s.level, string(line))
	s.inst.log(context.Background(), s.level, string(line), slog.String(AttrStream, s.name))
}

// flush emits a trailing partial line at the end of an invocation.
func (s *stream) flush() {
	if len(s.buf) > 0 {
		s.emit(s.buf)
		s.buf = nil
	}
}
