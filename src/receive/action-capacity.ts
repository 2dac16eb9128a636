/**
 * ActionCapacity bounds the work requests put in flight, counted in actions (events × matched actions):
 * at most `perRequest` for one request and `perProcess` for all requests at once. A request beyond either
 * is refused before any of its actions starts (429 + Retry-After: the Broker redelivers later), so a
 * 1,000-event batch against a rule with 50 actions cannot take the process past its memory.
 */
export interface ActionCapacityOptions {
  perRequest: number;
  perProcess: number;
}

export type Reservation = { ok: true; release(): void } | { ok: false; reason: string; retryAfterMs: number };

export interface ActionCapacity {
  /** reserve takes room for `actions` until released, or says why there is none. */
  reserve(actions: number): Reservation;
  readonly inFlight: number;
}

/** How long the Broker should wait before redelivering a refused request. */
const RETRY_AFTER_MS = 1000;

export function createActionCapacity({ perRequest, perProcess }: ActionCapacityOptions): ActionCapacity {
  let inFlight = 0;
  return {
    get inFlight() {
      return inFlight;
    },
    reserve(actions) {
      if (actions > perRequest) {
        return { ok: false, reason: `the request matched ${actions} actions, more than MAX_ACTIONS_PER_REQUEST (${perRequest}): send smaller batches`, retryAfterMs: RETRY_AFTER_MS };
      }
      // An idle process takes any request within the per-request cap, so a large one is never starved.
      if (inFlight > 0 && inFlight + actions > perProcess) {
        return { ok: false, reason: `${inFlight} actions in flight; ${actions} more would pass MAX_ACTIONS_IN_FLIGHT (${perProcess})`, retryAfterMs: RETRY_AFTER_MS };
      }
      inFlight += actions;
      let released = false;
      return {
        ok: true,
        release() {
          if (released) return;
          released = true;
          inFlight -= actions;
        },
      };
    },
  };
}
