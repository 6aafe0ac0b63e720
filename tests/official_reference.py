"""An independent transcription of the official CDVD-TSP model, used only as a test oracle.

Written from the reference description of csbhr/CDVD-TSP (``cdvd_tsp.py``, ``flow_pwc.py``,
``recons_video.py``, ``blocks.py``, ``utils.calc_meanFilter``) with the official module names, the
official call sequence (six unbatched PWC-Net calls in stage 1, two in stage 2, each extracting both
pyramids), and the official order of operations. Only the CUDA-only parts are replaced: the CuPy
correlation by a per-displacement loop, ``.cuda()`` by the input's device, and ``grid_sample`` gets the
``align_corners=True`` that PyTorch 0.4.1 implied. It shares no code with ``model/``: if both agree, the
port computes the official function. The unused Sobel branch of ``Flow_PWC.forward`` is left out (its
result is discarded by ``CDVD_TSP.forward``).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def official_correlation(first, second):
    """CuPy kernel semantics: out[(dy+4)*9+(dx+4)] = sum_c first(y,x) second(y+dy, x+dx) / C."""
    batch, channels, height, width = first.shape
    out = first.new_zeros(batch, 81, height, width)
    padded = F.pad(second, [4, 4, 4, 4])
    for channel in range(81):
        dx, dy = channel % 9 - 4, channel // 9 - 4
        shifted = padded[:, :, 4 + dy:4 + dy + height, 4 + dx:4 + dx + width]
        out[:, channel] = torch.sum(first * shifted, dim=1) / channels
    return out


def Backward(tensorInput, tensorFlow):
    B, _, H, W = tensorFlow.shape
    tensorHorizontal = (torch.linspace(-1.0, 1.0, W, device=tensorFlow.device)
                        .view(1, 1, 1, W).expand(B, -1, H, -1))
    tensorVertical = (torch.linspace(-1.0, 1.0, H, device=tensorFlow.device)
                      .view(1, 1, H, 1).expand(B, -1, -1, W))
    grid = torch.cat([tensorHorizontal, tensorVertical], 1)
    partial = tensorFlow.new_ones([B, 1, H, W])
    tensorFlow = torch.cat([tensorFlow[:, 0:1] / ((W - 1.0) / 2.0),
                            tensorFlow[:, 1:2] / ((H - 1.0) / 2.0)], 1)
    tensorInput = torch.cat([tensorInput, partial], 1)
    tensorOutput = F.grid_sample(tensorInput, (grid + tensorFlow).permute(0, 2, 3, 1), mode="bilinear",
                                 padding_mode="zeros", align_corners=True)
    tensorMask = tensorOutput[:, -1:, :, :].clone()
    tensorMask[tensorMask > 0.999] = 1.0
    tensorMask[tensorMask < 1.0] = 0.0
    return tensorOutput[:, :-1, :, :] * tensorMask


class Extractor(nn.Module):
    def __init__(self):
        super().__init__()
        chans = [3, 16, 32, 64, 96, 128, 196]
        for i, name in enumerate(["moduleOne", "moduleTwo", "moduleThr",
                                  "moduleFou", "moduleFiv", "moduleSix"]):
            setattr(self, name, nn.Sequential(
                nn.Conv2d(chans[i], chans[i + 1], 3, 2, 1), nn.LeakyReLU(0.1, False),
                nn.Conv2d(chans[i + 1], chans[i + 1], 3, 1, 1), nn.LeakyReLU(0.1, False),
                nn.Conv2d(chans[i + 1], chans[i + 1], 3, 1, 1), nn.LeakyReLU(0.1, False)))

    def forward(self, x):
        one = self.moduleOne(x)
        two = self.moduleTwo(one)
        thr = self.moduleThr(two)
        fou = self.moduleFou(thr)
        fiv = self.moduleFiv(fou)
        six = self.moduleSix(fiv)
        return [one, two, thr, fou, fiv, six]


class Decoder(nn.Module):
    def __init__(self, intLevel):
        super().__init__()
        intPrevious = [None, None, 81 + 32 + 2 + 2, 81 + 64 + 2 + 2, 81 + 96 + 2 + 2, 81 + 128 + 2 + 2,
                       81, None][intLevel + 1]
        intCurrent = [None, None, 81 + 32 + 2 + 2, 81 + 64 + 2 + 2, 81 + 96 + 2 + 2, 81 + 128 + 2 + 2,
                      81, None][intLevel + 0]
        if intLevel < 6:
            self.moduleUpflow = nn.ConvTranspose2d(2, 2, 4, 2, 1)
            self.moduleUpfeat = nn.ConvTranspose2d(intPrevious + 128 + 128 + 96 + 64 + 32, 2, 4, 2, 1)
            self.dblBackward = [None, None, None, 5.0, 2.5, 1.25, 0.625, None][intLevel + 1]
        self.moduleOne = nn.Sequential(nn.Conv2d(intCurrent, 128, 3, 1, 1), nn.LeakyReLU(0.1, False))
        self.moduleTwo = nn.Sequential(nn.Conv2d(intCurrent + 128, 128, 3, 1, 1), nn.LeakyReLU(0.1, False))
        self.moduleThr = nn.Sequential(nn.Conv2d(intCurrent + 256, 96, 3, 1, 1), nn.LeakyReLU(0.1, False))
        self.moduleFou = nn.Sequential(nn.Conv2d(intCurrent + 352, 64, 3, 1, 1), nn.LeakyReLU(0.1, False))
        self.moduleFiv = nn.Sequential(nn.Conv2d(intCurrent + 416, 32, 3, 1, 1), nn.LeakyReLU(0.1, False))
        self.moduleSix = nn.Sequential(nn.Conv2d(intCurrent + 448, 2, 3, 1, 1))

    def forward(self, tensorFirst, tensorSecond, objectPrevious):
        if objectPrevious is None:
            tensorVolume = F.leaky_relu(official_correlation(tensorFirst, tensorSecond), 0.1, False)
            tensorFeat = torch.cat([tensorVolume], 1)
        else:
            tensorFlow = self.moduleUpflow(objectPrevious["tensorFlow"])
            tensorFeat = self.moduleUpfeat(objectPrevious["tensorFeat"])
            tensorVolume = F.leaky_relu(official_correlation(
                tensorFirst, Backward(tensorSecond, tensorFlow * self.dblBackward)), 0.1, False)
            tensorFeat = torch.cat([tensorVolume, tensorFirst, tensorFlow, tensorFeat], 1)
        tensorFeat = torch.cat([self.moduleOne(tensorFeat), tensorFeat], 1)
        tensorFeat = torch.cat([self.moduleTwo(tensorFeat), tensorFeat], 1)
        tensorFeat = torch.cat([self.moduleThr(tensorFeat), tensorFeat], 1)
        tensorFeat = torch.cat([self.moduleFou(tensorFeat), tensorFeat], 1)
        tensorFeat = torch.cat([self.moduleFiv(tensorFeat), tensorFeat], 1)
        tensorFlow = self.moduleSix(tensorFeat)
        return {"tensorFlow": tensorFlow, "tensorFeat": tensorFeat}


class Refiner(nn.Module):
    def __init__(self):
        super().__init__()
        self.moduleMain = nn.Sequential(
            nn.Conv2d(81 + 32 + 2 + 2 + 128 + 128 + 96 + 64 + 32, 128, 3, 1, 1, 1), nn.LeakyReLU(0.1, False),
            nn.Conv2d(128, 128, 3, 1, 2, 2), nn.LeakyReLU(0.1, False),
            nn.Conv2d(128, 128, 3, 1, 4, 4), nn.LeakyReLU(0.1, False),
            nn.Conv2d(128, 96, 3, 1, 8, 8), nn.LeakyReLU(0.1, False),
            nn.Conv2d(96, 64, 3, 1, 16, 16), nn.LeakyReLU(0.1, False),
            nn.Conv2d(64, 32, 3, 1, 1, 1), nn.LeakyReLU(0.1, False),
            nn.Conv2d(32, 2, 3, 1, 1, 1))

    def forward(self, x):
        return self.moduleMain(x)


class Network(nn.Module):
    def __init__(self):
        super().__init__()
        self.moduleExtractor = Extractor()
        self.moduleTwo = Decoder(2)
        self.moduleThr = Decoder(3)
        self.moduleFou = Decoder(4)
        self.moduleFiv = Decoder(5)
        self.moduleSix = Decoder(6)
        self.moduleRefiner = Refiner()

    def forward(self, tensorFirst, tensorSecond):
        tensorFirst = self.moduleExtractor(tensorFirst)
        tensorSecond = self.moduleExtractor(tensorSecond)
        objectEstimate = self.moduleSix(tensorFirst[-1], tensorSecond[-1], None)
        objectEstimate = self.moduleFiv(tensorFirst[-2], tensorSecond[-2], objectEstimate)
        objectEstimate = self.moduleFou(tensorFirst[-3], tensorSecond[-3], objectEstimate)
        objectEstimate = self.moduleThr(tensorFirst[-4], tensorSecond[-4], objectEstimate)
        objectEstimate = self.moduleTwo(tensorFirst[-5], tensorSecond[-5], objectEstimate)
        return objectEstimate["tensorFlow"] + self.moduleRefiner(objectEstimate["tensorFeat"])


class Flow_PWC(nn.Module):
    def __init__(self):
        super().__init__()
        self.moduleNetwork = Network()

    def estimate_flow(self, tensorFirst, tensorSecond):
        b, c, intHeight, intWidth = tensorFirst.size()
        intPreprocessedWidth = int(math.floor(math.ceil(intWidth / 64.0) * 64.0))
        intPreprocessedHeight = int(math.floor(math.ceil(intHeight / 64.0) * 64.0))
        tensorPreprocessedFirst = F.interpolate(tensorFirst,
                                                size=(intPreprocessedHeight, intPreprocessedWidth),
                                                mode="bilinear", align_corners=False)
        tensorPreprocessedSecond = F.interpolate(tensorSecond,
                                                 size=(intPreprocessedHeight, intPreprocessedWidth),
                                                 mode="bilinear", align_corners=False)
        tensorFlow = 20.0 * F.interpolate(self.moduleNetwork(tensorPreprocessedFirst,
                                                             tensorPreprocessedSecond),
                                          size=(intHeight, intWidth), mode="bilinear", align_corners=False)
        tensorFlow[:, 0, :, :] *= float(intWidth) / float(intPreprocessedWidth)
        tensorFlow[:, 1, :, :] *= float(intHeight) / float(intPreprocessedHeight)
        return tensorFlow

    def warp(self, x, flo):
        B, C, H, W = x.size()
        xx = torch.arange(0, W).view(1, -1).repeat(H, 1)
        yy = torch.arange(0, H).view(-1, 1).repeat(1, W)
        xx = xx.view(1, 1, H, W).repeat(B, 1, 1, 1)
        yy = yy.view(1, 1, H, W).repeat(B, 1, 1, 1)
        grid = torch.cat((xx, yy), 1).float().to(x.device)
        vgrid = grid + flo
        vgrid[:, 0, :, :] = 2.0 * vgrid[:, 0, :, :].clone() / max(W - 1, 1) - 1.0
        vgrid[:, 1, :, :] = 2.0 * vgrid[:, 1, :, :].clone() / max(H - 1, 1) - 1.0
        vgrid = vgrid.permute(0, 2, 3, 1)
        output = F.grid_sample(x, vgrid, padding_mode="border", align_corners=True)
        mask = torch.ones(x.size(), device=x.device)
        mask = F.grid_sample(mask, vgrid, align_corners=True)
        mask[mask < 0.999] = 0
        mask[mask > 0] = 1
        return output * mask, mask

    def forward(self, frame_1, frame_2):
        flow = self.estimate_flow(frame_1, frame_2)
        warped, mask = self.warp(frame_2, flow)
        return warped, flow, None, mask


class ResBlock(nn.Module):
    def __init__(self, n_feat, kernel_size):
        super().__init__()
        self.conv1 = nn.Conv2d(n_feat, n_feat, kernel_size, 1, kernel_size // 2)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(n_feat, n_feat, kernel_size, 1, kernel_size // 2)

    def forward(self, x):
        return self.conv2(self.relu(self.conv1(x))) + x


class RECONS_VIDEO(nn.Module):
    def __init__(self, in_channels=3, n_sequence=3, out_channels=3, n_resblock=3, n_feat=32, kernel_size=5,
                 extra_channels=1):
        super().__init__()
        k = kernel_size
        self.inBlock = nn.Sequential(
            nn.Sequential(nn.Conv2d(in_channels * n_sequence + extra_channels, n_feat, k, 1, k // 2),
                          nn.ReLU(True)),
            *[ResBlock(n_feat, k) for _ in range(n_resblock)])
        self.encoder_first = nn.Sequential(
            nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, k, 2, k // 2), nn.ReLU(True)),
            *[ResBlock(n_feat * 2, k) for _ in range(n_resblock)])
        self.encoder_second = nn.Sequential(
            nn.Sequential(nn.Conv2d(n_feat * 2, n_feat * 4, k, 2, k // 2), nn.ReLU(True)),
            *[ResBlock(n_feat * 4, k) for _ in range(n_resblock)])
        self.decoder_second = nn.Sequential(
            *[ResBlock(n_feat * 4, k) for _ in range(n_resblock)],
            nn.Sequential(nn.ConvTranspose2d(n_feat * 4, n_feat * 2, 3, 2, 1, output_padding=1),
                          nn.ReLU(True)))
        self.decoder_first = nn.Sequential(
            *[ResBlock(n_feat * 2, k) for _ in range(n_resblock)],
            nn.Sequential(nn.ConvTranspose2d(n_feat * 2, n_feat, 3, 2, 1, output_padding=1), nn.ReLU(True)))
        self.outBlock = nn.Sequential(*[ResBlock(n_feat, k) for _ in range(n_resblock)],
                                      nn.Conv2d(n_feat, out_channels, k, 1, k // 2))

    def forward(self, x):
        first_scale_inblock = self.inBlock(x)
        first_scale_encoder_first = self.encoder_first(first_scale_inblock)
        first_scale_encoder_second = self.encoder_second(first_scale_encoder_first)
        first_scale_decoder_second = self.decoder_second(first_scale_encoder_second)
        first_scale_decoder_first = self.decoder_first(first_scale_decoder_second + first_scale_encoder_first)
        return self.outBlock(first_scale_decoder_first + first_scale_inblock)


def calc_meanFilter(img, kernel_size=5, n_channel=3):
    mean_filter_X = torch.ones(n_channel, 1, kernel_size, kernel_size, device=img.device) / (kernel_size ** 2)
    return F.conv2d(img, mean_filter_X, padding=kernel_size // 2, groups=n_channel)


class CDVD_TSP(nn.Module):
    def __init__(self, n_feat=32, n_resblock=3):
        super().__init__()
        self.flow_net = Flow_PWC()
        self.recons_net = RECONS_VIDEO(n_feat=n_feat, n_resblock=n_resblock)

    def get_masks(self, img_list, flow_mask_list):
        num_frames = len(img_list)
        img_list_copy = [calc_meanFilter(img.detach()) for img in img_list]
        delta = 1.0
        mid_frame = img_list_copy[num_frames // 2]
        diff = torch.zeros_like(mid_frame)
        for i in range(num_frames):
            diff = diff + (img_list_copy[i] - mid_frame).pow(2)
        diff = diff / (2 * delta * delta)
        diff = torch.sqrt(torch.sum(diff, dim=1, keepdim=True))
        luckiness = torch.exp(-diff)
        sum_mask = torch.ones_like(flow_mask_list[0])
        for i in range(num_frames):
            sum_mask = sum_mask * flow_mask_list[i]
        sum_mask = torch.sum(sum_mask, dim=1, keepdim=True)
        sum_mask = (sum_mask > 0).float()
        return luckiness * sum_mask

    def forward(self, x):
        frame_list = [x[:, i, :, :, :] for i in range(5)]
        warped01, _, _, flow_mask01 = self.flow_net(frame_list[1], frame_list[0])
        warped21, _, _, flow_mask21 = self.flow_net(frame_list[1], frame_list[2])
        warped12, _, _, flow_mask12 = self.flow_net(frame_list[2], frame_list[1])
        warped32, _, _, flow_mask32 = self.flow_net(frame_list[2], frame_list[3])
        warped23, _, _, flow_mask23 = self.flow_net(frame_list[3], frame_list[2])
        warped43, _, _, flow_mask43 = self.flow_net(frame_list[3], frame_list[4])
        one_mask = torch.ones_like(flow_mask01)

        def restore(warped_prev, centre, warped_next, mask_prev, mask_next):
            luckiness = self.get_masks([warped_prev, centre, warped_next], [mask_prev, one_mask, mask_next])
            return self.recons_net(torch.cat([warped_prev, centre, warped_next, luckiness], dim=1))

        recons_1 = restore(warped01, frame_list[1], warped21, flow_mask01, flow_mask21)
        recons_2 = restore(warped12, frame_list[2], warped32, flow_mask12, flow_mask32)
        recons_3 = restore(warped23, frame_list[3], warped43, flow_mask23, flow_mask43)
        warped_recons12, _, _, flow_mask_recons12 = self.flow_net(recons_2, recons_1)
        warped_recons32, _, _, flow_mask_recons32 = self.flow_net(recons_2, recons_3)
        out = restore(warped_recons12, recons_2, warped_recons32, flow_mask_recons12, flow_mask_recons32)
        return recons_1, recons_2, recons_3, out, None
