# papers 000 and 001 (losses-a)
from reid.losses.adaptive_margin import AdaptiveMarginLoss
from reid.losses.centers import CameraCenters, CenterLoss, center_update
from reid.losses.contrastive import ContrastiveLoss, TripletLoss
from reid.losses.smc_ecd import (
    ECDLoss,
    GCLLoss,
    InterGCLoss,
    IntraGCLoss,
    SMCECDLoss,
    SMCLoss,
    SoftmaxCenterLoss,
)

# papers 002, 003 and 004 (losses-b)
from reid.losses.angular_margin import (
    AngularMarginLoss,
    AttributeAngularMarginLoss,
    JointAngularTripletLoss,
    joint_loss,
)
from reid.losses.support_neighbor import SupportNeighborLoss
from reid.losses.triplet import BatchAllTripletLoss, BatchHardTripletLoss
from reid.losses.view_adaptation import (
    SimilarityDiscriminatorLoss,
    ViewConfusionLoss,
    ViewDiscriminatorLoss,
)
