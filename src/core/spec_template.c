/*
 * spec_template.c — the starter spec that `gantry init` writes (spec.h:
 * spec_starter). It must validate: tests/unit/core/test_spec.c loads it.
 */
#include "common.h"
#include "core/spec.h"

const char spec_starter[] =
	"# gantry.yaml: what to run and how to roll it out. Check it with `gantry validate`;\n"
	"# every key is described in docs/gantry.yaml.5.md.\n"
	"project: myapp\n"
	"\n"
	"# Environments, each with its own replicas and state. A service is reachable\n"
	"# through the proxy as SERVICE.ENVIRONMENT.localhost (or the hosts listed here).\n"
	"environments:\n"
	"  staging: { replicas: 1 }\n"
	"  production: { replicas: 2 }\n"
	"\n"
	"services:\n"
	"  web:\n"
	"    # a shell command line; gantry gives each replica its port in $PORT\n"
	"    run: python3 -m http.server $PORT --bind 127.0.0.1\n"
	"    # build: make                 # run in this directory before each deploy\n"
	"    env:\n"
	"      PYTHONUNBUFFERED: \"1\"\n"
	"    probes:\n"
	"      # ready once the port accepts connections; for an HTTP check: { http: /health }\n"
	"      readiness: { tcp: true, period: 1s }\n"
	"    stop_grace: 10s              # SIGTERM, then SIGKILL after this long\n"
	"    strategy:\n"
	"      rolling: { max_surge: 25%, max_unavailable: 0 }\n"
	"    environments:                # per-environment overrides of the keys above\n"
	"      production:\n"
	"        env: { PYTHONUNBUFFERED: \"1\" }\n";
