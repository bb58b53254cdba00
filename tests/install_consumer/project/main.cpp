// Uses the installed ReconAD: a tensor op and its gradient.
#include <cstdio>

#include "runtime/ops.hpp"

int main() {
  recon::Tensor x = recon::Tensor::from_vector({1, 2, 3, 4}, {2, 2}).set_requires_grad(true);
  recon::Tensor s = recon::sum(x);
  s.backward();
  std::printf("sum=%g grad0=%g\n", s.item(), x.grad().to_vector()[0]);
  return 0;
}
