// The host's imports (docs/abi.md §1.2) and the runtime hooks that keep a
// module free of any other import: build with
//
//   --use abort=__pirn_abort --use trace=__pirn_trace --use seed=__pirn_seed
//
// so that AssemblyScript's abort(), trace() and Math.random's seed() do not
// import env.abort, env.trace and env.seed, which the host refuses.

// @ts-ignore: decorator
@external("pirn", "input")
export declare function hostInput(ptr: usize): void;

// @ts-ignore: decorator
@external("pirn", "output")
export declare function hostOutput(ptr: usize, len: usize): void;

// @ts-ignore: decorator
@external("pirn", "log")
export declare function hostLog(level: i32, ptr: usize, len: usize): void;

/** Log levels of {@link log}. */
export namespace Level {
  export const Debug: i32 = 0;
  export const Info: i32 = 1;
  export const Warn: i32 = 2;
  export const Error: i32 = 3;
}

/** Sends a UTF-8 log line to the host, which records it tagged with the run and knot. */
export function log(level: i32, message: string): void {
  const buf = String.UTF8.encode(message, false, String.UTF8.ErrorMode.REPLACE);
  hostLog(level, changetype<usize>(buf), <usize>buf.byteLength);
}

export function logDebug(message: string): void { log(Level.Debug, message); }
export function logInfo(message: string): void { log(Level.Info, message); }
export function logWarn(message: string): void { log(Level.Warn, message); }
export function logError(message: string): void { log(Level.Error, message); }

/**
 * Replaces AssemblyScript's abort (failed assertions, out-of-range indices,
 * `throw`): logs the message at level error, then traps. The host reports
 * the invocation as an err of type "Trap" and discards the instance.
 */
// @ts-ignore: decorator
@global
export function __pirn_abort(message: string | null = null, fileName: string | null = null, line: u32 = 0, column: u32 = 0): void {
  let msg = "abort: " + (message !== null ? message : "(no message)");
  if (fileName !== null) msg += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  log(Level.Error, msg);
  unreachable();
}

/** Replaces AssemblyScript's trace(): a debug log line. */
// @ts-ignore: decorator
@global
export function __pirn_trace(message: string, n: i32 = 0, a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0, a4: f64 = 0): void {
  let msg = "trace: " + message;
  if (n > 0) msg += " " + a0.toString();
  if (n > 1) msg += " " + a1.toString();
  if (n > 2) msg += " " + a2.toString();
  if (n > 3) msg += " " + a3.toString();
  if (n > 4) msg += " " + a4.toString();
  log(Level.Debug, msg);
}

/**
 * Replaces the seed of Math.random: a constant, so that a knot's output
 * depends only on its inputs (the sandbox has no entropy either).
 */
// @ts-ignore: decorator
@global
export function __pirn_seed(): f64 {
  return 0x5eed;
}
