"""usage records, price books, statements"""
