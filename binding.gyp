{
  "variables": {
    "module_cflags": [
      "-std=c11",
      "-fvisibility=hidden",
      "-Wall",
      "-Wextra",
      "-Wno-unused-parameter",
      "-O2",
      "-fPIC"
    ],
    "module_ldflags": [
      "-Wl,--version-script=<(module_root_dir)/addon/ncfence.map",
      "-Wl,-z,defs",
      "-Wl,-z,now"
    ]
  },
  "target_defaults": {
    "include_dirs": [
      "/usr/include/p11-kit-1"
    ]
  },
  "targets": [
    {
      "target_name": "ncfence",
      "type": "shared_library",
      "product_prefix": "lib",
      "product_extension": "so",
      "sources": [
        "addon/attrs.c",
        "addon/classify.c",
        "addon/config.c",
        "addon/debug.c",
        "addon/entry.c",
        "addon/fastpath.c",
        "addon/find.c",
        "addon/forward.c",
        "addon/host.c",
        "addon/live.c",
        "addon/lower.c",
        "addon/map.c",
        "addon/notice.c",
        "addon/object.c",
        "addon/rebuild.c",
        "addon/session.c",
        "addon/snapshot.c",
        "addon/stamp.c",
        "addon/state.c",
        "addon/trust.c",
        "addon/view.c"
      ],
      "cflags": [ "<@(module_cflags)" ],
      "cflags!": [
        "-fno-exceptions"
      ],
      "ldflags": [ "<@(module_ldflags)" ],
      "libraries": [
        "-ldl",
        "-lpthread"
      ]
    },
    {
      "target_name": "ncfence_probe",
      "type": "shared_library",
      "product_prefix": "lib",
      "product_extension": "so",
      "sources": [
        "addon/probe/probe.c"
      ],
      "cflags": [ "<@(module_cflags)" ],
      "ldflags": [ "<@(module_ldflags)" ],
      "libraries": [
        "-ldl",
        "-lpthread"
      ],
      "product_name": "ncfence-probe"
    },
    {
      "target_name": "ncfence_node",
      "sources": [
        "addon/node/peercred.cc",
        "addon/node/recover.cc",
        "addon/node/stamp.cc",
        "addon/node/trust.cc",
        "addon/stamp.c",
        "addon/trust.c"
      ],
      "libraries": [
        "-lsecp256k1"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_DISABLE_CPP_EXCEPTIONS"
      ],
      "cflags_cc": [
        "-Wall",
        "-Wextra"
      ]
    },
    {
      "target_name": "ncfence_upstream",
      "sources": [
        "addon/node/upstream.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_DISABLE_CPP_EXCEPTIONS"
      ],
      "cflags_cc": [
        "-Wall",
        "-Wextra"
      ],
      "libraries": [
        "-ldl"
      ]
    },
    {
      "target_name": "nftest_upstream_shim",
      "type": "shared_library",
      "product_prefix": "lib",
      "product_extension": "so",
      "sources": [
        "test/fixtures/upstream-shim.c"
      ],
      "cflags": [
        "-std=c11",
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
        "-fPIC"
      ],
      "libraries": [
        "-ldl"
      ]
    }
  ]
}
