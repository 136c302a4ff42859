#!/usr/bin/env python3
"""Where a gateway request's CPU goes, by layer: reads `perf script -F comm,ip,sym,dso`
of a dwarf-unwound gateway profile (scripts/bench.sh profile with PROFILE_KIND) and
prints each layer's share and its microseconds per request.

    python3 scripts/profile-layers.py perf.script US_PER_REQUEST

A sample in user space counts for the innermost frame that names a layer (malloc and
memcpy count for their caller). A sample in the kernel counts as `kernel`, or as
`kernel<-LAYER` when the unwinder got back to the user frame that made the system call.
"""
import re
import sys

# per sample: leaf user?; attribute sample to first matching layer (innermost-first order of markers)
markers = [
 ("pg: diesel query build (walk_ast/to_sql/binds)", re.compile(r"walk_ast|construct_bind_data|collect_binds|to_sql|PgQueryBuilder|debug_query")),
 ("pg: row decode (build_from_row/FromSql)", re.compile(r"build_from_row|FromSql|from_sql|PgRow")),
 ("pg: tokio-postgres connection task", re.compile(r"drive_connection|Connection<S,T>::poll")),
 ("pg: tokio-postgres client encode/responses", re.compile(r"tokio_postgres::|postgres_protocol")),
 ("pg: diesel-async glue", re.compile(r"diesel_async")),
 ("redis client", re.compile(r"redis::|combine::")),
 ("pool checkout/permit", re.compile(r"checkout|deadpool|Server::permit|batch_semaphore")),
 ("response JSON (serde/chrono)", re.compile(r"serde|chrono|HttpResponseBuilder::json")),
 ("cluster read glue (shard_manager)", re.compile(r"shard_manager::")),
 ("analytics/observe", re.compile(r"analytics::|observe::|hdrhistogram")),
 ("request extractors (query/headers)", re.compile(r"from_request|FromRequest|form_urlencoded|extract::")),
 ("middleware: request_id", re.compile(r"request_id::")),
 ("middleware: security_headers", re.compile(r"security_headers::")),
 ("middleware: access/cors/host", re.compile(r"access::|cors::|guard::check_host")),
 ("handler (api_router)", re.compile(r"api_router::")),
 ("actix http codec/dispatcher", re.compile(r"actix_http::")),
 ("actix web/service", re.compile(r"actix_web::|actix_service::|actix_server")),
 ("tokio runtime/io/timers", re.compile(r"tokio::|mio::")),
]
counts={}; total=0; kern=0
def flush(stack):
    global total, kern
    if not stack: return
    total+=1
    if "[kernel" in stack[0]:
        kern+=1; key="kernel"
        # which user frame called into kernel
        for fr in stack:
            if "[kernel" in fr or "libc" in fr: continue
            for name,rx in markers:
                if rx.search(fr): key="kernel<-"+name; break
            break
    else:
        key="other user"
        for fr in stack:
            hit=False
            for name,rx in markers:
                if rx.search(fr): key=name; hit=True; break
            if hit: break
    counts[key]=counts.get(key,0)+1
stack=[]
for line in open(sys.argv[1], errors="replace"):
    if not line.startswith("\t") and not line.startswith(" "):
        flush(stack); stack=[]; continue
    s=line.strip()
    if s: stack.append(s)
flush(stack)
us=float(sys.argv[2])
for k,v in sorted(counts.items(), key=lambda x:-x[1]):
    print(f"{v*100/total:5.1f}%  {v*us/total:5.1f} us  {k}")
