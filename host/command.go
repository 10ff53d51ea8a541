package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/pirn-wasm/pirn/abi"
)

// WASI command modules (ABI wasi-command) are ordinary programs: the host
// starts a fresh instance per invocation, writes the input document (a
// map from input name to value, JSON unless the pipeline says CBOR) to
// its standard input, and reads one document from its standard output.
// Exit status 0 is ok; any other status is an err of type CommandError
// whose message is the program's standard error. Its argument list is
// the module's name; it has no environment and no files.

// CommandKnot is the name of a WASI command module's one knot.
const CommandKnot = "main"

// ErrCommand is the err type of a WASI command that exited non-zero.
const ErrCommand = "CommandError"

// checkCommandShape verifies that a command imports only WASI and exports
// _start.
func checkCommandShape(cm wazero.CompiledModule, wasi map[string]api.FunctionDefinition) error {
	var errs []error
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if mod == meterModule { // added by meter, refused in a module by scan
			continue
		}
		if _, ok := wasi[name]; mod != abi.WASIModule || !ok {
			errs = append(errs, fmt.Errorf("imports %s.%s, which the host does not provide (a WASI command may import only %s)", mod, name, abi.WASIModule))
		}
	}
	if f, ok := cm.ExportedFunctions()["_start"]; !ok || len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0 {
		errs = append(errs, errors.New("does not export _start () -> () (is it a WASI command? a reactor or library module needs another ABI)"))
	}
	return errors.Join(errs...)
}

func commandManifest(name string) *abi.Manifest {
	return &abi.Manifest{ABI: abi.Version, Knots: []abi.KnotSpec{{
		Name:   CommandKnot,
		Doc:    "WASI command " + name + ": input document on stdin, output document on stdout",
		Inputs: []abi.InputSpec{},
		Rest:   "any",
		Output: "any",
	}}}
}

// cappedBuffer collects a command's standard output up to MaxOutput.
type cappedBuffer struct {
	inst *instance
	buf  bytes.Buffer
}

func (w *cappedBuffer) Write(p []byte) (int, error) {
	if w.buf.Len()+len(p) > w.inst.lim.MaxOutput {
		if w.inst.violation == nil {
			w.inst.violation = &violation{typ: ErrLimit, msg: fmt.Sprintf("stdout exceeds the limit MaxOutput=%d bytes", w.inst.lim.MaxOutput)}
		}
		return 0, errors.New("stdout: MaxOutput exceeded")
	}
	return w.buf.Write(p)
}

// runCommand runs the command once in a fresh instance.
func (p *pool) runCommand(ctx context.Context, c *Call) (r abi.Response) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return fail(ErrCancelled, "cancelled before an instance was free: "+context.Cause(ctx).Error(), "")
	}
	defer func() { <-p.slots }()
	m := p.m
	doc, err := inputDocument(m.format, c)
	if err != nil {
		return fail(ErrType, fmt.Sprintf("knot %s: %v", CommandKnot, err), "")
	}
	inst := &instance{p: p, lim: p.lim}
	defer func() { r.Logs = inst.kept.Take() }()
	inst.stderr = &stream{inst: inst, name: "stderr", level: slog.LevelWarn}
	stdout := &cappedBuffer{inst: inst}
	cfg := p.configure(wazero.NewModuleConfig(), inst).
		WithName("").
		WithArgs(m.name).
		WithStdin(bytes.NewReader(doc)).
		WithStdout(stdout).
		WithStderr(inst.stderr).
		WithStartFunctions("_start")
	inst.begin(c.RunID, c.KnotID)
	cctx, stop := inst.arm(ctx)
	mod, err := p.c.rt.InstantiateModule(cctx, p.compiled, cfg)
	stop()
	inst.disarm()
	inst.stderr.flush()
	p.created.Add(1)
	if mod != nil {
		mod.Close(context.Background())
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 0 {
		err = nil
	}
	if inst.violation != nil {
		return inst.classify(ctx, cmpErr(err))
	}
	if err != nil {
		if errors.As(err, &exit) {
			switch exit.ExitCode() {
			case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			default:
				return commandFailure(inst, exit.ExitCode())
			}
		}
		return inst.classify(ctx, err)
	}
	v, err := decodeDocument(m.format, stdout.buf.Bytes())
	if err != nil {
		return fail(ErrABI, fmt.Sprintf("command output (%s): %v", m.format, err), inst.trace(""))
	}
	return abi.OK(v)
}

func cmpErr(err error) error {
	if err == nil {
		return errors.New("stopped")
	}
	return err
}

// commandFailure is the err of a command that exited with status code.
func commandFailure(inst *instance, code uint32) abi.Response {
	msg := strings.TrimSpace(string(inst.stderrTail))
	if msg == "" {
		msg = fmt.Sprintf("exited with status %d", code)
	}
	r := fail(ErrCommand, msg, "")
	r.Error.Detail = commandDetail(code)
	return r
}

// commandDetail is the canonical CBOR of {"status": code}.
func commandDetail(code uint32) []byte {
	return abi.AppendArgs(nil, []abi.Arg{{Name: "status", Value: abi.AppendInt(nil, int64(code))}})
}
