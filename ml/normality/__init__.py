"""Personalized facial normality: normalization, PSE heatmap and score, rating regression.

Methods from Boyaci, Serpedin & Stotland (Sci Rep 2020) and Hayajneh et al. (StyleGAN2-based
model adaptation for cleft faces). See ``docs/normality.md``.
"""
