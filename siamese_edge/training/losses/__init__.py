from siamese_edge.training.losses.contrastive import ContrastiveLoss
from siamese_edge.training.losses.triplet import TripletLoss

__all__ = ["ContrastiveLoss", "TripletLoss"]
