/*  main.c -- sy-broker: command line, configuration, logging, run.
 *
 *  Exit codes: 0 clean stop (SIGINT / SIGTERM), 1 runtime failure (the
 *  endpoint could not be bound, the durable store is corrupt, of a newer
 *  format or unreadable, ...), 2 usage error, 3 configuration error
 *  (the configuration module's message is printed as is).
 */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "broker/broker.h"
#include "common/config.h"
#include "common/sylog.h"

static void main_usage(FILE *f)
{
    fprintf(f,
        "usage: sy-broker [--config FILE] [--endpoint EP]\n"
        "       sy-broker --help | --version | --help-config [--markdown]\n"
        "\n"
        "Routes switchyard messages between actors on one ROUTER socket.\n"
        "  --config FILE   configuration file (default: $SWITCHYARD_CONFIG,\n"
        "                  else ./etc/switchyard.cfg if present, else defaults)\n"
        "  --endpoint EP   bind EP instead of broker/endpoint\n"
        "  --help-config   list every setting with its default\n"
        "  --version       print the version\n");
}

typedef struct {
    const char *config;
    const char *endpoint;
    bool help, version, help_config, markdown;
} main_args_t;

/* Returns 0, or 2 for a usage error (already reported). */
static int main_parse(int argc, char **argv, main_args_t *a)
{
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--config") || !strcmp(s, "--endpoint")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "sy-broker: %s needs a value\n", s);
                return 2;
            }
            *(s[2] == 'c' ? &a->config : &a->endpoint) = argv[++i];
        }
        else if (!strcmp(s, "--help") || !strcmp(s, "-h"))
            a->help = true;
        else if (!strcmp(s, "--version"))
            a->version = true;
        else if (!strcmp(s, "--help-config"))
            a->help_config = true;
        else if (!strcmp(s, "--markdown"))
            a->markdown = true;
        else {
            fprintf(stderr, "sy-broker: unknown argument: %s\n", s);
            main_usage(stderr);
            return 2;
        }
    }
    if (a->markdown && !a->help_config) {
        fprintf(stderr, "sy-broker: --markdown goes with --help-config\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    main_args_t a = { 0 };
    int rc = main_parse(argc, argv, &a);
    if (rc)
        return rc;
    if (a.help) {
        main_usage(stdout);
        return 0;
    }
    if (a.version) {
        printf("sy-broker %s\n", BROKER_VERSION);
        return 0;
    }
    if (a.help_config) {
        config_print_table(stdout, a.markdown);
        return 0;
    }

    char err[512];
    config_t *cfg = NULL;
    if (config_load(config_pick_path(a.config), &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "sy-broker: %s\n", err);
        return 3;
    }
    sylog_level_t level = SYLOG_INFO;
    if (sylog_level_parse(config_str(cfg, "log/level"), &level) != 0) {
        fprintf(stderr, "sy-broker: %s: log/level: \"%s\" is not a level\n",
                config_source(cfg), config_str(cfg, "log/level"));
        config_destroy(&cfg);
        return 3;
    }
    if (sylog_open("sy-broker", level, config_str(cfg, "log/file")) != 0) {
        fprintf(stderr, "sy-broker: cannot open log file %s\n", config_str(cfg, "log/file"));
        config_destroy(&cfg);
        return 3;
    }

    broker_opts_t o = {
        .endpoint     = a.endpoint ? a.endpoint : config_str(cfg, "broker/endpoint"),
        .name         = config_str(cfg, "broker/name"),
        .heartbeat_ms = (uint32_t) config_int(cfg, "broker/heartbeat"),
        .liveness_ms  = (uint32_t) config_int(cfg, "broker/liveness"),
        .max_msg      = (size_t) config_int(cfg, "broker/max_msg"),
        .queue_max    = (size_t) config_int(cfg, "broker/queue_max"),
        .queue_bytes  = (size_t) config_int(cfg, "broker/queue_bytes"),
        .memory_max   = (size_t) config_int(cfg, "broker/memory_max"),
        .cfg          = cfg,
    };
    sylog_info("configuration from %s", config_source(cfg));
    broker_t *broker = broker_new(&o, err, sizeof err);
    if (!broker) {
        sylog_error("%s", err);
        if (config_str(cfg, "log/file")[0])     /* else sylog wrote to stderr */
            fprintf(stderr, "sy-broker: %s\n", err);
        config_destroy(&cfg);
        sylog_close();
        zsys_shutdown();
        return 1;
    }
    broker_run(broker);
    sylog_info("stopping");
    broker_destroy(&broker);
    config_destroy(&cfg);
    zsys_shutdown();
    sylog_close();
    return 0;
}
