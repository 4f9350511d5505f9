"""Help text shared by the text-to-motion methods' ``paper_needs`` (``./reproduce.sh METHOD DATASET --help``).

The T2M evaluator files are what every text-to-motion paper number was measured with
(Guo et al. 2022; README "Reproducing the paper numbers" has the same list).
"""

T2M_EVAL = """  T2M evaluator (text2motion / reconstruction FID), one folder in $T2M_EVALUATOR_ROOT:
    [checkpoints/]t2m/text_mot_match/model/finest.tar      (kit/ for KIT-ML)
    [checkpoints/]t2m/Comp_v6_KLD01/meta/{mean,std}.npy    (or MDM's t2m_mean.npy / t2m_std.npy)
    glove/our_vab_{data.npy,words.pkl,idx.pkl}
    (text-to-motion prepare/download_evaluators.sh + download_glove.sh; MoMask's and MLD's
    deps/t2m + deps/glove layouts work too). Without it an evaluator is retrained here on
    MiniLM word vectors and the numbers are NOT comparable."""
