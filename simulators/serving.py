"""Compiled loops of local serving: one local model's requests through N servers with continuous batching (see
`simulators.deployment` for the model), and the accounting of attempts whose start, first token and finish are
known. Indexed binary heaps keep each event at O(log servers + log slots), so a million requests take well under
a second; `cache=True` keeps the machine code beside this file.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from simulators.kernels import attempt_price


@njit(cache=True)
def _less(key, srv, a, b):
    return key[a] < key[b] or (key[a] == key[b] and srv[a] < srv[b])


@njit(cache=True)
def _swap(key, srv, pos, a, b):
    key[a], key[b] = key[b], key[a]
    srv[a], srv[b] = srv[b], srv[a]
    pos[srv[a]] = a
    pos[srv[b]] = b


@njit(cache=True)
def _set_key(key, srv, pos, s, value):
    """Indexed min-heap over servers (ties: lower server first): server s's key becomes value."""
    i = pos[s]
    key[i] = value
    size = key.size
    while i > 0 and _less(key, srv, i, (i - 1) >> 1):
        _swap(key, srv, pos, i, (i - 1) >> 1)
        i = (i - 1) >> 1
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and _less(key, srv, c + 1, c):
            c += 1
        if _less(key, srv, c, i):
            _swap(key, srv, pos, c, i)
            i = c
        else:
            break


@njit(cache=True)
def _push(hk, hr, s, size, k, r):
    i = size
    while i > 0 and hk[s, (i - 1) >> 1] > k:
        hk[s, i], hr[s, i] = hk[s, (i - 1) >> 1], hr[s, (i - 1) >> 1]
        i = (i - 1) >> 1
    hk[s, i], hr[s, i] = k, r


@njit(cache=True)
def _pop(hk, hr, s, size):
    last_k, last_r = hk[s, size - 1], hr[s, size - 1]
    size -= 1
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and hk[s, c + 1] < hk[s, c]:
            c += 1
        if hk[s, c] < last_k:
            hk[s, i], hr[s, i] = hk[s, c], hr[s, c]
            i = c
        else:
            break
    if size > 0:
        hk[s, i], hr[s, i] = last_k, last_r


@njit(cache=True, nogil=True)
def serve(ready, tokens_in, tokens_out, servers, slots, itl, beside, prefill_s, wake_idle, wake_s, kv_need, kv_budget,
          limit, on_ttft, allowed):  # fmt: skip
    """Requests sorted by `ready` through `servers` servers of `slots` slots: start (admission), first token and
    finish of each, and (backlog when the last request arrived, most ever waiting, late requests, busy
    server-seconds, stopped early). `itl[b]`: seconds of a decode iteration with b sequences; `beside[b]`: what
    they add to a step that also takes in prompts; `prefill_s[k]`: seconds per prompt token when k prompts share a
    step; `wake_s` at `wake_idle`: what the first step after the server idled that long adds (linear in between,
    flat beyond); `kv_need`: bytes a request reserves; a request counts as late when its TTFT (`on_ttft`) or latency
    passes `limit`, and the walk stops once more than `allowed` are late (a sizing probe)."""
    n = ready.size
    start, first, finish = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    inf = np.inf
    t = np.zeros(servers)  # the server's clock: its last iteration boundary (or the end of a prefill)
    done = np.zeros(servers)  # decode iterations done so far
    run = np.zeros(servers, np.int64)
    kv = np.zeros(servers)
    since = np.zeros(servers)
    hk = np.empty((servers, slots))  # per server: min-heap of the iteration count at which each sequence ends
    hr = np.empty((servers, slots), np.int64)
    ckey, csrv, cpos = np.full(servers, inf), np.arange(servers), np.arange(servers)  # next completion
    # servers by how many sequences they run: a stack per count, each server's place in its stack, the lowest count
    level = np.empty((slots + 1, servers), np.int64)
    level[0] = np.arange(servers)[::-1]  # popped from the top: server 0 first
    count = np.zeros(slots + 1, np.int64)
    count[0] = servers
    place = np.arange(servers)[::-1].copy()
    lowest = 0
    i = head = backlog_last = backlog_max = late = 0
    busy = 0.0
    while head < n or ckey[0] < inf:
        ta = ready[i] if i < n else inf
        idle = 0.0  # how long the server taking a prompt now had been idle
        if ckey[0] <= ta:  # a completion: the server reaches the boundary where its next sequences end
            s = csrv[0]
            boundary = ckey[0]
            done[s] = hk[s, 0]
            t[s] = boundary
        else:  # an arrival joins the queue; when it is alone there, the least-loaded server may take it now
            i += 1
            waiting = i - head
            backlog_max = max(backlog_max, waiting)
            if i == n:
                backlog_last = waiting
            if waiting > 1:
                continue
            s = level[lowest, count[lowest] - 1]  # the least-loaded server (the most recent of equals)
            b = run[s]
            if b >= slots or (b > 0 and kv[s] + kv_need[head] > kv_budget):
                continue
            if b == 0 or ta <= t[s]:
                boundary = max(ta, t[s])
                if b == 0:
                    idle = boundary - t[s]  # an idle server's clock stays where its last sequence ended
            else:  # it joins at the server's next iteration boundary
                j = min(np.ceil((ta - t[s]) / itl[b]), hk[s, 0] - done[s])
                boundary = t[s] + j * itl[b]
                done[s] += j
            t[s] = boundary
        prev = b = run[s]
        while b > 0 and hk[s, 0] <= done[s]:  # sequences that end here
            r = hr[s, 0]
            finish[r] = boundary
            kv[s] -= kv_need[r]
            late += (not on_ttft) and boundary - ready[r] > limit
            _pop(hk, hr, s, b)
            b -= 1
        if prev > 0 and b == 0:
            busy += boundary - since[s]
        was = b
        admitted, prompts = head, 0.0
        step = 1.0 if was > 0 else 0.0  # the running sequences decode one token in the prompts' step
        while head < i and b < slots and (b == 0 or kv[s] + kv_need[head] <= kv_budget):  # FIFO admission
            r = head
            head += 1
            start[r] = t[s]
            prompts += tokens_in[r]
            if tokens_out[r] > 0:
                _push(hk, hr, s, b, done[s] + step + tokens_out[r], r)
                b += 1
                kv[s] += kv_need[r]
        if head > admitted:  # one step: every new prompt beside one decode token of each running sequence
            t[s] += prompts * prefill_s[head - admitted] + beside[was]  # beside[0] = 0: nothing running
            if idle > 0.0:
                t[s] += np.interp(idle, wake_idle, wake_s)
            done[s] += step
            for r in range(admitted, head):
                first[r] = t[s]
                late += on_ttft and t[s] - ready[r] > limit
                if tokens_out[r] <= 0:
                    finish[r] = t[s]
        if was == 0 and b > 0:
            since[s] = boundary
        if b != run[s]:  # move the server to the stack of its new count
            old = run[s]
            at, last = place[s], level[old, count[old] - 1]
            level[old, at], place[last] = last, at
            count[old] -= 1
            level[b, count[b]], place[s] = s, count[b]
            count[b] += 1
            lowest = min(lowest, b)
            while count[lowest] == 0:
                lowest += 1
        run[s] = b
        _set_key(ckey, csrv, cpos, s, t[s] + (hk[s, 0] - done[s]) * itl[b] if b > 0 else inf)
        if late > allowed:
            return start, first, finish, (backlog_last, backlog_max, late, busy, True)
    return start, first, finish, (backlog_last, backlog_max, late, busy, False)


@njit(cache=True, nogil=True)
def account_timed(
    lo,
    hi,
    attempts,
    start,
    first,
    finish,
    arrival,
    rates,
    tokens_in,
    tokens_out,
    permitted,
    correct,
    slo_ms,
    total,
    wait,
    ttft,
    latency,
    first_attempt,
    wasted,
    right,
    violation,
    late,
):  # pragma: no cover - compiled
    """`kernels._account` for attempts whose start, first-token and finish times are given (tiers x requests)."""
    k = attempts.shape[1]
    for i in range(lo, hi):
        ready, cost_i, wait_i, begun, first_i, tries, right_i, broke = arrival[i], 0.0, 0.0, 0.0, 0.0, 0, False, False
        for t in range(k):
            j = attempts[i, t]
            if j < 0:
                continue
            cost = attempt_price(rates, j, tokens_in[i], tokens_out[i])[0]
            tries += 1
            cost_i += cost
            wait_i += start[t, i] - ready
            broke |= not permitted[i, j]
            begun, first_i, right_i = start[t, i], first[t, i], correct[i, j]
            ready = finish[t, i]
        total[i], wait[i], right[i], violation[i] = cost_i, wait_i, right_i, broke
        if tries == 0:
            latency[i] = ttft[i] = first_attempt[i] = np.nan
            wasted[i], late[i] = 0.0, False
        else:
            latency[i], ttft[i] = ready - arrival[i], first_i - arrival[i]
            first_attempt[i] = begun - arrival[i] if tries > 1 else np.nan
            wasted[i] = (tries - 1) * (tokens_in[i] + tokens_out[i])
            late[i] = latency[i] > slo_ms[i] / 1000.0
