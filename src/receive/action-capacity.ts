/**
 * ActionCapacity bounds the work requests put in flight, counted in actions (events × matched actions):
 * at most `perRequest` for one request and `perProcess` for all requests at once. A request beyond either
 * is refused before any of its actions starts (429 + Retry-After: the Broker redelivers later), so a
 * 1,000-event batch against a rule with 50 actions cannot take the process past its memory.
 * Team rules are bounded per namespace too (`perTeam`), and all teams together to half the process's
 * room, so one team's slow destination cannot take the capacity every other namespace and the cluster
 * rules need: only the namespace over its share is refused.
 */
export interface ActionCapacityOptions {
  perRequest: number;
  perProcess: number;
  /** Most actions of one team namespace's rules in flight (default: a tenth of perProcess). */
  perTeam?: number;
}

/** The part of perProcess all teams together may use; the rest is kept for cluster rules. */
const TEAMS_SHARE = 0.5;

export type Reservation = { ok: true; release(): void } | { ok: false; reason: string; retryAfterMs: number };

export interface ActionCapacity {
  /**
   * reserve takes room for `actions` (of which `teamActions` per team namespace) until released, or says why there is
   * none.
   */
  reserve(actions: number, teamActions?: ReadonlyMap<string, number>): Reservation;
  readonly inFlight: number;
}

/** How long the Broker should wait before redelivering a refused request. */
const RETRY_AFTER_MS = 1000;

export function createActionCapacity({
  perRequest,
  perProcess,
  perTeam = Math.max(1, Math.floor(perProcess / 10)),
}: ActionCapacityOptions): ActionCapacity {
  let inFlight = 0;
  let teamsInFlight = 0;
  const byTeam = new Map<string, number>();
  const teamsMax = Math.max(perTeam, Math.floor(perProcess * TEAMS_SHARE));
  const refuse = (reason: string): Reservation => ({ ok: false, reason, retryAfterMs: RETRY_AFTER_MS });
  return {
    get inFlight() {
      return inFlight;
    },
    reserve(actions, teamActions = new Map()) {
      if (actions > perRequest) {
        return refuse(
          `the request matched ${actions} actions, more than MAX_ACTIONS_PER_REQUEST (${perRequest}): send smaller batches`,
        );
      }
      let teamTotal = 0;
      for (const [namespace, count] of teamActions) {
        const held = byTeam.get(namespace) ?? 0;
        if (held + count > perTeam) {
          return refuse(
            `namespace ${namespace}: ${held} of its rules' actions in flight; ${count} more would pass TEAM_MAX_ACTIONS_IN_FLIGHT (${perTeam})`,
          );
        }
        teamTotal += count;
      }
      if (teamTotal > 0 && teamsInFlight + teamTotal > teamsMax) {
        return refuse(
          `${teamsInFlight} actions of team rules in flight; ${teamTotal} more would pass the teams' half of MAX_ACTIONS_IN_FLIGHT (${teamsMax}), kept so cluster rules always have room`,
        );
      }
      // An idle process takes any request within the per-request cap, so a large one is never starved.
      if (inFlight > 0 && inFlight + actions > perProcess) {
        return refuse(
          `${inFlight} actions in flight; ${actions} more would pass MAX_ACTIONS_IN_FLIGHT (${perProcess})`,
        );
      }
      inFlight += actions;
      teamsInFlight += teamTotal;
      for (const [namespace, count] of teamActions) byTeam.set(namespace, (byTeam.get(namespace) ?? 0) + count);
      let released = false;
      return {
        ok: true,
        release() {
          if (released) return;
          released = true;
          inFlight -= actions;
          teamsInFlight -= teamTotal;
          for (const [namespace, count] of teamActions) {
            const left = (byTeam.get(namespace) ?? 0) - count;
            if (left > 0) byTeam.set(namespace, left);
            else byTeam.delete(namespace);
          }
        },
      };
    },
  };
}
