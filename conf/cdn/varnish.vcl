vcl 4.1;
#
# Varnish 6/7 in front of a Lockstep redundant pair (conf/main.xml,
# conf/backup.xml): the main node first, the backup when the main is sick,
# unreachable, or answers 404/5xx for a URL.
#
#   varnishd -C -f "$PWD/conf/cdn/varnish.vcl"          # compile only (syntax check)
#   varnishd -a :8080 -f "$PWD/conf/cdn/varnish.vcl" -s malloc,1G \
#            -p max_retries=2 -n /tmp/varnish-lockstep
#
# Both nodes serve byte-identical objects under identical URLs (and identical
# ETags), so an object cached from either node is valid for both. Concurrent
# requests for the same URL (blocking playlist requests for the same point)
# wait on Varnish's waiting list for one backend fetch: one request per point
# reaches the origin.
#
# The health probes use GET /health on the LLHLS port: 200 when the node is
# fit to serve, 503 otherwise (the pair's health endpoint). A node whose
# probe fails is skipped by the fallback director until it recovers.
#
# Timing assumes TARGETDURATION <= 6 s: the origin holds a blocking request
# up to 3 x TARGETDURATION, then answers 503; first_byte_timeout is above that.

import directors;

probe lockstep_health {
    # The node's health endpoint.
    .url = "/health";
    # Only 200 means healthy (503 with reasons otherwise).
    .expected_response = 200;
    # Probe every second, give each probe 500 ms.
    .interval = 1s;
    .timeout = 500ms;
    # Healthy when 2 of the last 3 probes passed; start as healthy.
    .window = 3;
    .threshold = 2;
    .initial = 2;
}

backend main {
    .host = "127.0.0.1";
    .port = "3333";
    .probe = lockstep_health;
    # Fail over quickly when the node does not accept connections.
    .connect_timeout = 1s;
    # Blocking requests are held up to 3 x TARGETDURATION (18 s at TD 6 s).
    .first_byte_timeout = 20s;
    .between_bytes_timeout = 5s;
}

backend backup {
    .host = "127.0.0.1";
    .port = "3334";
    .probe = lockstep_health;
    .connect_timeout = 1s;
    .first_byte_timeout = 20s;
    .between_bytes_timeout = 5s;
}

sub vcl_init {
    # The first healthy backend in this order: main, then backup.
    new pair = directors.fallback();
    pair.add_backend(main);
    pair.add_backend(backup);
}

sub vcl_recv {
    # Only GET and HEAD are served (OPTIONS preflights pass through uncached).
    if (req.method == "OPTIONS") {
        return (pass);
    }
    if (req.method != "GET" && req.method != "HEAD") {
        return (synth(405, "Method Not Allowed"));
    }
    # Lockstep uses no cookies or authorization in OriginMode true; drop cookies
    # so that the built-in VCL does not refuse to cache.
    unset req.http.Cookie;
    # Lookup even with Authorization (no access control at the origin).
    return (hash);
}

sub vcl_hash {
    # The full URL including the query string: _HLS_msn, _HLS_part and
    # _HLS_skip name different playlists. The host is not part of the key:
    # both nodes serve the same URLs.
    hash_data(req.url);
    return (lookup);
}

sub vcl_backend_fetch {
    if (bereq.retries == 0) {
        # First attempt: the first healthy node, main preferred.
        set bereq.backend = pair.backend();
    } else {
        # A retry (the main failed this URL): the backup, whatever the probe says
        # about the main.
        set bereq.backend = backup;
    }
}

sub vcl_backend_response {
    # Retry on the backup when the main answered 404 (not published there, e.g.
    # after a restart) or 5xx (503: held too long or overloaded), once.
    if ((beresp.status == 404 || beresp.status >= 500) && bereq.retries < 1 && beresp.backend == main) {
        return (retry);
    }
    # 400 and 503 are "no-store" at the origin: never cache them, and do not let
    # the built-in VCL make a hit-for-miss object that would stop request
    # coalescing for this URL for two minutes.
    if (beresp.status == 400 || beresp.status >= 500) {
        set beresp.uncacheable = true;
        set beresp.ttl = 1s;
        return (deliver);
    }
    # TTLs come from the origin's Cache-Control (Varnish's default): blocking
    # playlists 6 x TD, live playlists TD / 2, media a year (immutable), init
    # the window, 404 one second. Only guard against a response without one.
    if (!beresp.http.Cache-Control) {
        set beresp.ttl = 1s;
    }
    # Live (non-blocking) playlists must not be served stale for long.
    if (bereq.url ~ "\.m3u8" && bereq.url !~ "[?&]_HLS_msn=") {
        set beresp.grace = 1s;
    } else {
        set beresp.grace = 10s;
    }
    # Record which node answered (shown to clients in X-Upstream).
    set beresp.http.X-Upstream = beresp.backend.name;
}

sub vcl_backend_error {
    # Connection refused or timed out on the main: try the backup once.
    if (bereq.retries < 1 && beresp.backend == main) {
        return (retry);
    }
}

sub vcl_deliver {
    # HIT or MISS, for checking that the cache works.
    if (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
}
