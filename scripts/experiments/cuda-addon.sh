# Sourced by the GPU scripts: build_cuda_addon OUT BUILD_DIR compiles the N-API addon with g++
# against python3's torch (CUDA libtorch) into OUT, from the carried headers in .gpu/ (node's
# include/node and node-addon-api); it rebuilds only when a native source is newer than OUT.
# Returns non-zero when compiling or linking fails.
build_cuda_addon() {
  local out=$1 build=$2 newest t0 LIBTORCH ABI f p
  newest=$(ls -t native/*.cc native/*.h 2>/dev/null | head -1)
  if [ -f "$out" ] && ! [ "$newest" -nt "$out" ]; then return 0; fi
  t0=$(date +%s)
  LIBTORCH=$(python3 -c 'import torch,os;print(os.path.dirname(torch.__file__))')
  ABI=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
  mkdir -p "$build"
  local flags=(-O2 -std=c++17 -fPIC -fexceptions -frtti -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED
    -D_GLIBCXX_USE_CXX11_ABI="$ABI" -Wno-deprecated-declarations -I.gpu/include/node -I.gpu/napi -I"$LIBTORCH/include" -I"$LIBTORCH/include/torch/csrc/api/include")
  local pids=()
  for f in native/*.cc; do g++ "${flags[@]}" -c "$f" -o "$build/$(basename "$f" .cc).o" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || { echo "compiling the addon failed"; return 3; }; done
  g++ -shared -o "$out.tmp" "$build"/*.o -L"$LIBTORCH/lib" -Wl,-rpath,"$LIBTORCH/lib" -Wl,--no-as-needed -ltorch_cuda -lc10_cuda -ltorch -ltorch_cpu -lc10 -Wl,--as-needed || return 3
  mv "$out.tmp" "$out"
  echo "built the CUDA addon in $(( $(date +%s) - t0 )) s (torch $(python3 -c 'import torch; print(torch.__version__)'))"
}
