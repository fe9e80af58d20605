"""Differentiable array ops. Each op computes its forward and defines its backward
beside it; layers and the expression language are built from these."""
from .activations import ACTIVATIONS, elu, gelu, linear, log_softmax, relu, selu, sigmoid, softmax, softplus, tanh
from .arith import abs_, add, clip, div, exp, log, maximum, minimum, mul, neg, power, sign, sqrt, square, sub, unbroadcast, where
from .linalg import batch_dot, dot, matmul
from .random import random_normal, random_uniform
from .reduce import max_, mean, min_, sum_
from .shape import cast, concatenate, expand_dims, gather, getitem, one_hot, pad, permute, reshape, squeeze, stack
