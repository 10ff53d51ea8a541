// Responses (docs/abi.md §2.2): {"ok": v}, {"err": {...}}, {"skip": {...}}.

import { Value, DictValue, NULL } from "./value";
import { Encoder } from "./cbor";

export enum Outcome {
  OK = 1,
  Err = 2,
  Skip = 3,
}

/** What a knot's handler returns: build one with ok(), err() or skip(). */
export class Response {
  outcome: Outcome;
  value: Value = NULL;
  /** err: the class of failure, e.g. "ValueError". */
  type: string = "";
  /** err: human-readable. */
  message: string = "";
  /** skip: why. */
  reason: string = "";
  /** err and skip: any value, or null for none. */
  detail: Value | null = null;
  /** err: a stack trace, if the knot has one. */
  trace: string = "";

  constructor(outcome: Outcome) {
    this.outcome = outcome;
  }

  /** Attaches a detail value to an err or skip. */
  withDetail(detail: Value): Response {
    this.detail = detail;
    return this;
  }

  /** Attaches a trace to an err. */
  withTrace(trace: string): Response {
    this.trace = trace;
    return this;
  }

  get isOK(): bool { return this.outcome == Outcome.OK; }
  get isErr(): bool { return this.outcome == Outcome.Err; }
  get isSkip(): bool { return this.outcome == Outcome.Skip; }

  /** Appends the response's canonical encoding to e. */
  encode(e: Encoder): void {
    if (this.outcome == Outcome.OK) {
      e.head(5, 1);
      e.str("ok");
      e.value(this.value);
      return;
    }
    const body = new DictValue();
    const d = this.detail;
    if (this.outcome == Outcome.Err) {
      body.setStr("type", this.type.length > 0 ? this.type : "Error");
      body.setStr("message", this.message);
      if (d !== null) body.set("detail", d);
      if (this.trace.length > 0) body.setStr("trace", this.trace);
    } else {
      body.setStr("reason", this.reason.length > 0 ? this.reason : "skipped");
      if (d !== null) body.set("detail", d);
    }
    e.head(5, 1);
    e.str(this.outcome == Outcome.Err ? "err" : "skip");
    e.value(body);
  }
}

/** A successful result. */
export function ok(value: Value): Response {
  const r = new Response(Outcome.OK);
  r.value = value;
  return r;
}

/** A failure of class type ("ValueError", "IOError", …; "Error" if empty). */
export function err(type: string, message: string): Response {
  const r = new Response(Outcome.Err);
  r.type = type;
  r.message = message;
  return r;
}

/** The knot opts out of this invocation; downstream knots skip too by default. */
export function skip(reason: string): Response {
  const r = new Response(Outcome.Skip);
  r.reason = reason;
  return r;
}
