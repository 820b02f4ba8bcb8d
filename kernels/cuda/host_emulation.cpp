// The CUDA kernels of seki_ops.cu built as plain C++: each grid-stride loop
// runs serially over all its elements (see the comment at the top there).
#include "seki_ops.cu"
