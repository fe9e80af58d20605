"""The one list of layer types. The spec schema, validation and the compiler all read
it, so adding a layer means: write its file, add it here, add its test."""
from __future__ import annotations

from .activation import Activation
from .add import Add
from .additive_attention import AdditiveAttention
from .attention import Attention
from .average import Average
from .average_pooling2d import AveragePooling2D
from .batch_normalization import BatchNormalization
from .bidirectional import Bidirectional
from .concatenate import Concatenate
from .conv1d import Conv1D
from .conv2d import Conv2D
from .dense import Dense
from .dot import Dot
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .gaussian_dropout import GaussianDropout
from .gaussian_noise import GaussianNoise
from .global_average_pooling2d import GlobalAveragePooling2D
from .global_max_pooling2d import GlobalMaxPooling2D
from .group_normalization import GroupNormalization
from .gru import GRU
from .lambda_layer import Lambda
from .layer_normalization import LayerNormalization
from .lstm import LSTM
from .max_pooling1d import MaxPooling1D
from .max_pooling2d import MaxPooling2D
from .maximum import Maximum
from .merge import Merge
from .minimum import Minimum
from .multi_head_attention import MultiHeadAttention
from .multiply import Multiply
from .normalization import Normalization
from .permute import Permute
from .repeat_vector import RepeatVector
from .rescaling import Rescaling
from .reshape import Reshape
from .simple_rnn import SimpleRNN
from .spatial_dropout1d import SpatialDropout1D
from .spatial_dropout2d import SpatialDropout2D
from .subtract import Subtract
from .time_distributed import TimeDistributed
from .unit_normalization import UnitNormalization
from .zero_padding2d import ZeroPadding2D
# Layer zoo II: convolution, pooling and activation layers
from .average_pooling1d import AveragePooling1D
from .conv2d_transpose import Conv2DTranspose
from .cropping1d import Cropping1D
from .cropping2d import Cropping2D
from .depthwise_conv2d import DepthwiseConv2D
from .elu import ELU
from .global_average_pooling1d import GlobalAveragePooling1D
from .global_max_pooling1d import GlobalMaxPooling1D
from .leaky_relu import LeakyReLU
from .prelu import PReLU
from .relu import ReLU
from .separable_conv2d import SeparableConv2D
from .softmax import Softmax
from .up_sampling1d import UpSampling1D
from .up_sampling2d import UpSampling2D
from .zero_padding1d import ZeroPadding1D

LAYER_CLASSES = (
    Activation, Add, Average, AveragePooling2D, BatchNormalization, Bidirectional,
    Concatenate, Conv1D, Conv2D, Dense, Dot, Dropout, Embedding, Flatten, GRU,
    GlobalAveragePooling2D, GlobalMaxPooling2D, LSTM, Lambda, LayerNormalization,
    MaxPooling1D, MaxPooling2D, Maximum, Merge, Minimum, Multiply, Permute, RepeatVector,
    Reshape, SimpleRNN, Subtract, TimeDistributed, ZeroPadding2D,
    # Layer zoo II: attention, normalisation, preprocessing, training-only noise
    AdditiveAttention, Attention, GaussianDropout, GaussianNoise, GroupNormalization,
    MultiHeadAttention, Normalization, Rescaling, SpatialDropout1D, SpatialDropout2D,
    UnitNormalization,
    # Layer zoo II: convolution, pooling and activation layers
    AveragePooling1D, Conv2DTranspose, Cropping1D, Cropping2D, DepthwiseConv2D, ELU,
    GlobalAveragePooling1D, GlobalMaxPooling1D, LeakyReLU, PReLU, ReLU, SeparableConv2D,
    Softmax, UpSampling1D, UpSampling2D, ZeroPadding1D,
)

REGISTRY = {cls.TYPE: cls for cls in LAYER_CLASSES}
