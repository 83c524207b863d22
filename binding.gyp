{
  "targets": [
    {
      "target_name": "coded_torch",
      "sources": [
        "native/addon.cc",
        "native/marshal.cc",
        "native/tensor_basics.cc",
        "native/ops.cc",
        "native/nn.cc",
        "native/autograd.cc",
        "native/jit.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node native/libtorch-config.cjs includes)"
      ],
      "libraries": ["<!@(node native/libtorch-config.cjs libs)"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "_GLIBCXX_USE_CXX11_ABI=<!(node native/libtorch-config.cjs abi)"
      ],
      "cflags!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-deprecated-declarations", "-Wno-missing-field-initializers"]
    }
  ]
}
